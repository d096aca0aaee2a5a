"""Where every random stream comes from: one place, so seeds mean the same thing everywhere.

scikit-learn's ``random_state`` (None, an int or a ``RandomState``) seeds a
private ``torch.Generator``; estimators draw only from their own generator, and
the global numpy and torch streams are never touched. Numpy code inside an
estimator (scikit-learn's ``GaussianMixture``, noise densities) gets a seed
drawn from the estimator's generator, and fixed streams (a validation split, a
monitoring subset) are generators with a fixed seed.
"""

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = ["cpu_generator_state", "fixed_generator", "make_generator", "numpy_seed"]


def make_generator(random_state, device):
    """A private ``torch.Generator`` seeded from a scikit-learn ``random_state``.

    The global numpy and torch seeds are never touched.
    """
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    return torch.Generator(device=device).manual_seed(seed)


def fixed_generator(seed=0, device="cpu"):
    """A generator with a fixed seed: the same stream on every call, whatever ``random_state`` says.

    For what must not vary from call to call, such as the validation split or
    the units a monitor flips.
    """
    return torch.Generator(device=device).manual_seed(seed)


def numpy_seed(generator):
    """A seed for numpy or scikit-learn code, drawn from (and advancing) ``generator``."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator, device=generator.device))


def cpu_generator_state(generator):
    """The state of a CPU generator that continues ``generator``'s stream (or, for CUDA, one seeded by it)."""
    if generator.device.type == "cpu":
        return generator.get_state()
    twin = torch.Generator(device=generator.device)  # a copy, so that saving never advances the model's stream
    twin.set_state(generator.get_state())
    seed = int(torch.randint(2**62, (1,), generator=twin, device=generator.device))
    return torch.Generator().manual_seed(seed).get_state()

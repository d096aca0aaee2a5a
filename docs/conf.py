"""Sphinx configuration: numpydoc API pages and a sphinx-gallery of the examples, built offline."""

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import skebm  # noqa: E402

project = "skebm"
author = "the skebm developers"
copyright = "2026, the skebm developers"
release = version = skebm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
templates_path = ["_templates"]  # classes: one autoclass, no member tables of torch.nn.Module internals
autodoc_default_options = {"members": True, "inherited-members": "Module"}  # not torch.nn.Module's own
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
nitpicky = True  # a reference to a missing object fails the build
nitpick_ignore_regex = [(r"py:.*", r"(torch|sklearn|numpy|matplotlib|collections\.abc)\..*")]  # no intersphinx offline
nitpick_ignore = [("py:class", "Module")]  # from torch.nn.Module.forward's docstring, which our forwards inherit

# scikit-learn's metadata-routing and set_output methods: their docstrings point into scikit-learn's own docs.
_SKLEARN_PLUMBING = {"get_metadata_routing", "set_output"}


def _skip_sklearn_plumbing(app, what, name, obj, skip, options):
    if name in _SKLEARN_PLUMBING or (name.startswith("set_") and name.endswith("_request")):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_plumbing)


exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
html_theme = "alabaster"
html_static_path = []

# SKEBM_GALLERY=fast runs only the quick examples (seconds each); the default runs them all.
FAST_EXAMPLES = r"plot_(latent_ellipse|grid_search_step_size|rbm_digits)\.py"
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": FAST_EXAMPLES if os.environ.get("SKEBM_GALLERY") == "fast" else r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
}

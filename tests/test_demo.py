from skebm import demo


def test_quick_demo_prints_scores_and_writes_the_plot(tmp_path, capsys):
    demo.main(["--quick", "--output", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "eight gaussians" in printed and "RBM(16) test log-likelihood" in printed
    assert "ellipse: fitted half-axes" in printed
    assert (tmp_path / "skebm_demo.png").stat().st_size > 10_000

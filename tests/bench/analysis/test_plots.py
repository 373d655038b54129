"""Every figure is written as a valid PNG of sensible size (and SVG), for a 3-model run and for --paper."""
import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")

from bench.analysis import plots  # noqa: E402
from bench.analysis.frames import load_dataset  # noqa: E402


def _sensible(size):
    width, height = size
    return 500 <= width <= 4000 and 250 <= height <= 4000


def test_every_figure_of_a_three_model_run(tmp_path, three_model_run, check_png):
    ds = load_dataset([str(three_model_run)], tmp_path)
    written, skipped = plots.plot_all(ds, tmp_path / "plots", formats=("png",))
    kinds = [(w.what, w.series) for w in written]
    assert ("accuracy vs latency", "cpu") in kinds and ("accuracy vs latency", "torch") in kinds
    assert ("latency vs MACs and params", "cpu") in kinds and ("latency vs MACs and params", "torch") in kinds
    assert ("reparameterization ablation", "torch") in kinds
    assert ("measured vs paper", "") in kinds and ("rank agreement", "") in kinds
    assert len(written) == 7
    assert skipped == ["reparameterization ablation on cpu: no train-form results "
                       "(measure them with bench run --both-forms)"]
    for w in written:
        (png,) = w.paths
        assert _sensible(check_png(png)), (png, check_png(png))
        assert ds.source in png.name  # named by the run they come from
    names = sorted(p.name for w in written for p in w.paths if p.suffix == ".png")
    assert "accuracy_vs_latency-cpu-20260101-090000-aaaa.png" in names
    assert "rank_agreement-20260101-090000-aaaa.png" in names


def test_figures_are_written_as_png_and_svg_by_default(tmp_path, three_model_run, check_png):
    ds = load_dataset([str(three_model_run)], tmp_path)
    w = plots.rank_agreement_heatmap(ds.cells, tmp_path, ds.source)
    png, svg = w.paths
    assert png.suffix == ".png" and svg.suffix == ".svg"
    assert _sensible(check_png(png))
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text[:2000]


def test_every_figure_of_the_paper_alone(tmp_path, check_png):
    ds = load_dataset(None, "unused", paper=True)
    written, skipped = plots.plot_all(ds, tmp_path, formats=("png",))
    # Per paper platform: accuracy vs latency and latency vs complexity; then the rank agreement heatmap.
    assert len(written) == 4 * 2 + 1
    assert any("measured vs paper" in s for s in skipped)
    for w in written:
        (png,) = w.paths
        assert _sensible(check_png(png)), (png, check_png(png))
    assert (tmp_path / "accuracy_vs_latency-iPhone_12-paper.png").is_file()


def test_failed_cells_are_left_out_of_figures(tmp_path, write_run, mk, check_png):
    env = mk.env("host-a", "AMD EPYC")
    path = write_run("20260101-090000-aaaa", env, [
        mk.cell("mobileone_s0", "cpu", 40.0, env), mk.cell("mobilenetv2_100", "cpu", 45.0, env),
        mk.cell("repvgg_a0", "cpu", None, env, error="RuntimeError: boom")])
    ds = load_dataset([str(path)], tmp_path)
    w = plots.accuracy_vs_latency(ds.cells, ds.cells["device_key"].iloc[0], tmp_path, ds.source)
    assert _sensible(check_png(w.paths[0]))


def test_labels_do_not_overlap_where_there_is_room(tmp_path):
    _, Figure, FigureCanvasAgg = plots._mpl()
    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    # A tight cluster: naive labels right of each point would all collide.
    xs = np.array([1.0, 1.02, 1.04, 1.06, 3.0])
    ys = np.array([1.0, 1.01, 0.99, 1.0, 2.0])
    ax.scatter(xs, ys)
    ax.set_xlim(0, 4)
    ax.set_ylim(0, 3)
    labels = plots.place_labels(ax, xs, ys, ["alpha", "beta", "gamma", "delta", "epsilon"])
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in labels]
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)


def test_log_scale_only_where_values_span_about_a_decade():
    _, Figure, FigureCanvasAgg = plots._mpl()
    fig = Figure()
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(ncols=2)
    assert plots.set_scale(ax1, "x", [10, 500]) and ax1.get_xscale() == "log"
    assert not plots.set_scale(ax2, "x", [40, 130]) and ax2.get_xscale() == "linear"


def test_missing_matplotlib_names_the_plot_extra(monkeypatch):
    import sys

    from bench.core.errors import MissingBackendError
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(MissingBackendError) as err:
        plots._mpl()
    assert "mobileone-bench[plot]" in str(err.value) and "\n" not in str(err.value)

"""The benchmark helpers: interleaved timing, a tiny layer grid, tables and JSON."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from monai_sre.experiments import benchmark


def test_interleaved_medians_orders_work():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = benchmark.interleaved_medians(fns, torch.device("cpu"), warmup=1, repeats=3)
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())
    assert calls == ["a", "b"] * 4  # round-robin, warm-up included


def test_tiny_layer_grid_table_and_json(monkeypatch):
    monkeypatch.setitem(benchmark._LAYER_GRID, True, [(2, 4, (3,), 8, 1)])
    result = benchmark.run_benchmark("cpu", quick=True, sections=["layers"], clock="cpu")
    (row,) = result["layers"]
    assert set(row["train_ms"]) == {"conv", "dense", "bands", "auto"}
    assert row["auto_path_train"] in ("dense", "filter_mix", "mix_filter")
    # the band path runs fewer FLOPs than the dense kernel; params: SRE has bands, not taps
    assert row["gflops"]["bands"] < row["gflops"]["dense"]
    assert row["params"]["dense"] < row["params"]["conv"]
    table = benchmark.format_tables(result)
    assert "| 2 | 4 | 3 |" in table
    json.dumps(result)


def test_bad_arguments():
    with pytest.raises(ValueError, match="sections"):
        benchmark.run_benchmark("cpu", sections=["gpu"])
    with pytest.raises(ValueError, match="clock"):
        benchmark.run_benchmark("cpu", clock="sundial")


def test_timed_training_reports_accuracy_of_the_evaluator(tmp_path):
    out = benchmark.timed_training("synthetic2d", root=str(tmp_path), model="plain_resnet18", seconds=1, batch_size=16,
                                   widths=(4, 4, 8, 8), algorithm="dense")
    assert out["iterations"] >= 1 and out["samples_per_s"] > 0
    correct = out["test_accuracy"] * 300  # the 300 test images of synthetic2d
    assert 0 <= round(correct) <= 300 and correct == pytest.approx(round(correct), abs=1e-6)


def test_growth_exponent_of_a_power_law():
    voxels = [8**3, 16**3, 32**3]
    assert benchmark.growth_exponent(voxels, [2e-6 * v**1.25 for v in voxels]) == pytest.approx(1.25)


@pytest.mark.slow
def test_twin_table_pairs_each_sre_network_with_its_plain_twin():
    twins = benchmark.twin_rows(torch.device("cpu"), quick=True, memory=False)
    assert {(r["sre"], r["plain"]) for r in twins["rows"]} == {("sre_r3d_18", "r3d_18"), ("sre_unet", "plain_unet")}
    for r in twins["rows"]:
        assert r["train_ratio"] == pytest.approx(r["train_ms"]["sre"] / r["train_ms"]["plain"])
        assert r["params"]["sre"] < r["params"]["plain"]
    assert [g["sizes"] for g in twins["growth"]] == [[12, 16], [12, 16]]
    (window,) = twins["windows"]
    assert window["ratio"] == pytest.approx(window["seconds"]["sre"] / window["seconds"]["plain"])
    table = benchmark.format_tables({"twins": twins})
    assert "| SRE-UNet | plain_unet | 1x1x16x16x16 |" in table and "Growth exponent" in table
    json.dumps(twins)


@pytest.mark.slow
def test_memory_probe_of_a_sliding_window_grows_with_the_window():
    probe = lambda window: benchmark._cpu_peak_mb_subprocess(  # noqa: E731
        "plain_unet", None, 3, (1, 1, 64, 64, 64), (4, 4, 8, 4), "segmentation", window, threads=1)
    small, large = probe(16), probe(64)
    assert small is not None and large is not None and 0 <= small < large


def test_parts_cover_each_network_and_add_up_to_its_flops():
    rows = benchmark.part_rows(torch.device("cpu"), quick=True)
    names, widths, batch, size = benchmark._PARTS[True]
    for name in names:
        parts = [r for r in rows if r["network"] == name]
        assert [r["part"] for r in parts] == ["stem", "stage 1", "stage 2", "stage 3", "stage 4"]
        net = benchmark._build_model(name, None, 3, widths).eval()
        x = torch.randn(batch, 1, size, size, size)
        with torch.no_grad():
            net(x)  # the eval-mode kernel caches fill, as in the timed parts (expansion is not counted then)
        head = benchmark._gflops(nn.Sequential(net.global_pool, nn.Flatten(), net.fc), net.forward_features(x))
        assert sum(r["gflops"] for r in parts) + head == pytest.approx(benchmark._gflops(net, x), rel=1e-6)
    assert "| sre_r3d_18 | stem |" in benchmark.format_tables({"parts": rows})

from __future__ import annotations

import os

import pytest
import torch
from ignite.engine import Engine, Events

from monai_sre.handlers import (
    AtomicDiskSaver,
    ResumeFromCheckpoint,
    SRECheckpointLoader,
    SRECheckpointSaver,
    TrainingSettings,
)


def _trainer(net, opt, sched, losses):
    def step(engine, batch):
        opt.zero_grad()
        loss = net(batch).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        return [{"loss": loss.detach()}]

    engine = Engine(step)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: sched.step())
    return engine


def _objects(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    return net, opt, sched


DATA = [torch.ones(2, 3) * i for i in range(3)]


def test_atomic_disk_saver_fixed_name_keeps_file(tmp_path):
    saver = AtomicDiskSaver(str(tmp_path / "ck"), filename="last.pt")
    saver({"a": torch.tensor(1)}, "ignored_1.pt")
    saver.remove("ignored_1.pt")  # a fixed name is replaced atomically, never deleted first
    assert sorted(os.listdir(tmp_path / "ck")) == ["last.pt"]
    saver({"a": torch.tensor(2)}, "ignored_2.pt")
    assert torch.load(tmp_path / "ck" / "last.pt")["a"].item() == 2
    assert sorted(os.listdir(tmp_path / "ck")) == ["last.pt"]  # no temporary file left


def test_saver_rejects_bad_arguments(tmp_path):
    net = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="n_saved"):
        SRECheckpointSaver(str(tmp_path), {"model": net}, save_interval=1, interval_filename="last.pt", n_saved=3)
    with pytest.raises(ValueError, match="engine_key"):
        SRECheckpointSaver(str(tmp_path), {"model": net}, save_interval=1, engine_key="model")
    with pytest.raises(TypeError, match="load_dict"):
        ResumeFromCheckpoint(str(tmp_path / "x.pt"), {})


def test_resume_continues_without_losing_epochs(tmp_path):
    ckpt = tmp_path / "models"
    # reference: 4 uninterrupted epochs
    net, opt, sched = _objects()
    ref_losses: list[float] = []
    _trainer(net, opt, sched, ref_losses).run(DATA, max_epochs=4)
    ref_weight = net.weight.detach().clone()

    # run 1: 2 epochs, saving last.pt each epoch
    net, opt, sched = _objects()
    losses: list[float] = []
    engine = _trainer(net, opt, sched, losses)
    objs = {"model": net, "optimizer": opt, "lr_scheduler": sched}
    SRECheckpointSaver(str(ckpt), objs, save_interval=1, interval_filename="last.pt", engine_key="trainer").attach(engine)
    engine.run(DATA, max_epochs=2)
    assert sorted(os.listdir(ckpt)) == ["last.pt"]
    state = torch.load(ckpt / "last.pt", weights_only=True)
    assert set(state) == {"model", "optimizer", "lr_scheduler", "trainer"}
    assert state["trainer"]["iteration"] == 2 * len(DATA)  # Ignite stores the iteration

    # run 2: fresh objects (a new process), resume and continue to 4 epochs
    net, opt, sched = _objects(seed=123)
    engine = _trainer(net, opt, sched, losses)
    objs = {"model": net, "optimizer": opt, "lr_scheduler": sched}
    resume = ResumeFromCheckpoint(str(ckpt / "last.pt"), objs, engine_key="trainer")
    resume.attach(engine)
    resume.attach(engine)  # attaching twice registers once
    SRECheckpointSaver(str(ckpt), objs, save_interval=1, interval_filename="last.pt", engine_key="trainer").attach(engine)
    engine.run(DATA, max_epochs=4)
    assert resume.resumed_epoch == 2
    assert engine.state.epoch == 4 and engine.state.iteration == 4 * len(DATA)
    assert len(losses) == len(ref_losses)  # no epoch repeated or skipped
    assert torch.allclose(torch.tensor(losses), torch.tensor(ref_losses), atol=1e-6)
    assert torch.allclose(net.weight, ref_weight, atol=1e-6)
    assert torch.load(ckpt / "last.pt", weights_only=True)["trainer"]["iteration"] == 4 * len(DATA)


def test_resume_missing_file_starts_fresh_and_disabled_skips(tmp_path):
    net, opt, sched = _objects()
    losses: list[float] = []
    engine = _trainer(net, opt, sched, losses)
    resume = ResumeFromCheckpoint(str(tmp_path / "absent.pt"), {"model": net})
    resume.attach(engine)
    engine.run(DATA, max_epochs=1)
    assert resume.resumed_epoch is None and engine.state.epoch == 1

    torch.save({"model": net.state_dict()}, tmp_path / "present.pt")
    off = ResumeFromCheckpoint(str(tmp_path / "present.pt"), {"model": net}, enabled=False)
    engine2 = _trainer(net, opt, sched, losses)
    off.attach(engine2)
    engine2.run(DATA, max_epochs=1)
    assert off.resumed_epoch is None


def test_resume_names_objects_the_checkpoint_lacks(tmp_path):
    net, opt, sched = _objects()
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "last.pt")
    engine = _trainer(net, opt, sched, [])
    objs = {"model": net, "optimizer": opt, "training_schedule": sched}
    ResumeFromCheckpoint(str(tmp_path / "last.pt"), objs).attach(engine)
    with pytest.raises(ValueError, match=r"last.pt has no \['training_schedule'\] \(it holds \['model', 'optimizer'\]\)"):
        engine.run(DATA, max_epochs=1)


def test_best_saver_state_round_trip(tmp_path):
    net = torch.nn.Linear(1, 1)
    evaluator = Engine(lambda e, b: None)
    scores = iter([0.5, 0.9, 0.7])

    @evaluator.on(Events.EPOCH_COMPLETED)
    def _metric(engine):
        engine.state.metrics["acc"] = next(scores)

    saver = SRECheckpointSaver(
        str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="acc", key_metric_filename="model.pt"
    )
    saver.attach(evaluator)
    for _ in range(3):
        evaluator.run([0], max_epochs=1)
    state = saver.state_dict()
    assert [priority for priority, _ in state["_saved"]] == [0.9]
    fresh = SRECheckpointSaver(
        str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="acc", key_metric_filename="model.pt"
    )
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]


@pytest.mark.parametrize("name", ["last.pt", "model.pt"])
def test_truncated_checkpoint_error_names_the_file(tmp_path, name):
    net, opt, sched = _objects()
    path = tmp_path / name
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict()}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy killed half-way
    engine = _trainer(net, opt, sched, [])
    resume = ResumeFromCheckpoint(str(path), {"model": net, "optimizer": opt})
    with pytest.raises(RuntimeError, match=f"checkpoint .*{name}.*truncated or corrupt"):
        resume(engine)
    with pytest.raises(RuntimeError, match=f"{name}.*Restore a good copy"):
        SRECheckpointLoader(str(path), {"model": net})(engine)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        SRECheckpointLoader(str(tmp_path / "absent.pt"), {"model": net})(engine)


def _saver(ckpt, objs):
    return SRECheckpointSaver(str(ckpt), objs, save_interval=1, interval_filename="last.pt", engine_key="trainer")


def _run_with_schedule(ckpt, epochs, extend=True):
    net, opt, sched = _objects()
    sched.T_max = epochs  # the configured length, as train.json sets T_max=@epochs
    lrs: list[float] = []
    engine = _trainer(net, opt, sched, [])
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: lrs.append(opt.param_groups[0]["lr"]))
    objs = {"model": net, "optimizer": opt, "lr_scheduler": sched}
    ResumeFromCheckpoint(str(ckpt / "last.pt"), objs, engine_key="trainer", extend_schedule=extend).attach(engine)
    _saver(ckpt, objs).attach(engine)
    engine.run(DATA, max_epochs=epochs)
    return lrs


def test_more_epochs_on_a_finished_run_extend_the_cosine_schedule(tmp_path):
    assert _run_with_schedule(tmp_path, 2) == pytest.approx([0.1, 0.05])  # finished: cosine over 2 epochs
    # re-run with 4 epochs: continues on the 4-epoch cosine (lr 0.05, then 0.1 * (1 + cos(3 pi / 4)) / 2), not at 0
    assert _run_with_schedule(tmp_path, 4) == pytest.approx([0.05, 0.1 * (1 - 0.5 ** 0.5) / 2])
    with pytest.raises(ValueError, match="T_max=4 epochs but the run is configured with T_max=6"):
        _run_with_schedule(tmp_path, 6, extend=False)


def test_resume_restores_the_evaluators_best_metric(tmp_path):
    net, opt, sched = _objects()
    evaluator = Engine(lambda e, b: None)
    evaluator.state.best_metric, evaluator.state.best_metric_epoch = 0.9, 2
    saver = SRECheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="acc",
                               key_metric_filename="model.pt")
    saver.attach(evaluator)
    state = saver.state_dict()
    fresh_evaluator = Engine(lambda e, b: None)
    fresh_evaluator.state.best_metric, fresh_evaluator.state.best_metric_epoch = -1, -1  # as MONAI starts
    fresh = SRECheckpointSaver(str(tmp_path), {"model": net}, save_key_metric=True, key_metric_name="acc",
                               key_metric_filename="model.pt")
    fresh.attach(fresh_evaluator)
    fresh.load_state_dict(state)
    assert (fresh_evaluator.state.best_metric, fresh_evaluator.state.best_metric_epoch) == (0.9, 2)


def test_amp_grad_scaler_is_saved_and_restored(tmp_path):
    net, opt, sched = _objects()
    engine = _trainer(net, opt, sched, [])
    engine.scaler_ = torch.amp.GradScaler("cpu", init_scale=512.0)  # what MONAI's trainer holds with amp=True
    objs = {"model": net, "optimizer": opt, "lr_scheduler": sched}
    _saver(tmp_path, objs).attach(engine)
    engine.run(DATA, max_epochs=1)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["grad_scaler"]["scale"] == 512.0
    engine2 = _trainer(net, opt, sched, [])
    engine2.scaler_ = torch.amp.GradScaler("cpu", init_scale=2.0)
    ResumeFromCheckpoint(str(tmp_path / "last.pt"), objs, engine_key="trainer").attach(engine2)
    engine2.run(DATA, max_epochs=2)
    assert engine2.scaler_.get_scale() == 512.0


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_code_running_pickle_is_refused_as_such(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"model": _RunsCode()}, path)
    net = torch.nn.Linear(1, 1)
    with pytest.raises(RuntimeError) as err:
        SRECheckpointLoader(str(path), {"model": net})(Engine(lambda e, b: None))
    message = str(err.value)
    assert f"{path} was refused: it is not loadable with torch.load(weights_only=True)" in message
    assert "may run code" in message and "truncated" not in message and "\n" not in message


def test_a_failed_checkpoint_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    saver = AtomicDiskSaver(str(tmp_path), filename="last.pt")
    saver({"a": torch.tensor(1)}, "ignored.pt")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        saver({"a": torch.tensor(2)}, "ignored.pt")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]  # the temporary file is gone
    assert torch.load(tmp_path / "last.pt", weights_only=True)["a"].item() == 1  # the old checkpoint is intact


def _resumed(path, objs):
    resume = ResumeFromCheckpoint(str(path), objs, engine_key="trainer")
    engine = _trainer(objs["model"], objs["optimizer"], _objects()[2], [])
    resume.attach(engine)
    engine.run(DATA, max_epochs=1)
    return resume


def test_settings_are_saved_next_to_the_weights_and_checked_on_resume(tmp_path, caplog):
    net, opt, sched = _objects()
    settings = TrainingSettings({"widths": (4, 4), "intensity_range": [0, 1], "input_smoothing": None})
    objs = {"model": net, "optimizer": opt, "settings": settings}
    engine = _trainer(net, opt, sched, [])
    _saver(tmp_path, objs).attach(engine)
    engine.run(DATA, max_epochs=1)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["settings"]
    assert saved == {"widths": [4, 4], "intensity_range": [0, 1], "input_smoothing": None}

    same = {"model": net, "optimizer": opt, "settings": TrainingSettings({**saved, "intensity_range": (0.0, 1.0)})}
    resume = _resumed(tmp_path / "last.pt", same)  # equal values: lists and tuples, ints and floats
    assert resume.resumed_epoch == 1 and same["settings"].loaded == saved

    other = {"model": net, "optimizer": opt, "settings": TrainingSettings({**saved, "widths": [8, 8]})}
    with pytest.raises(ValueError) as err:
        _resumed(tmp_path / "last.pt", other)
    assert "last.pt was trained with widths=[4, 4] but this run is configured with widths=[8, 8]" in str(err.value)

    state = torch.load(tmp_path / "last.pt", weights_only=True)
    del state["settings"]
    torch.save(state, tmp_path / "old.pt")  # written before checkpoints carried their settings
    with caplog.at_level("WARNING"):
        old = _resumed(tmp_path / "old.pt", other)
    assert old.resumed_epoch == 1
    assert len([r for r in caplog.records if "no record of the settings" in r.getMessage()]) == 1
    with pytest.raises(TypeError, match="setting 'device' must be plain data"):
        TrainingSettings({"device": torch.device("cpu")})

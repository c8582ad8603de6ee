"""The Ignite checkpoint handlers: interval and best saves, resume only of the same run, readable errors."""

from __future__ import annotations

import json
import os

import pytest
import torch
from ignite.engine import Engine, Events

from monai_sre.checkpoint import RunRecord
from monai_sre.handlers import ResumeFromCheckpoint, SRECheckpointLoader, SRECheckpointSaver


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


def test_saver_rejects_bad_arguments(tmp_path):
    net = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="nothing to save"):
        SRECheckpointSaver(str(tmp_path), {"model": net})
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


def _resumed(path, objs, run_dir=None):
    resume = ResumeFromCheckpoint(str(path), objs, engine_key="trainer", run_dir=run_dir)
    engine = _trainer(objs["model"], objs["optimizer"], _objects()[2], [])
    resume.attach(engine)
    engine.run(DATA, max_epochs=1)
    return resume


def _record(**training):
    return RunRecord(network={"widths": (4, 4)}, preprocessing={"intensity_range": [0, 1]},
                     training={"learning_rate": 0.1, "seed": 0, "epochs": 1, **training}, resumable=["epochs"])


def test_the_record_is_saved_with_the_weights_written_to_the_run_folder_and_checked_on_resume(tmp_path, caplog):
    net, opt, sched = _objects()
    objs = {"model": net, "optimizer": opt, "record": _record()}
    engine = _trainer(net, opt, sched, [])
    _saver(tmp_path / "models", objs).attach(engine)
    engine.run(DATA, max_epochs=1)
    saved = torch.load(tmp_path / "models" / "last.pt", weights_only=True)["record"]
    assert saved == _record().state_dict() and saved["network"] == {"widths": [4, 4]}

    same = {"model": net, "optimizer": opt, "record": _record(epochs=3)}  # the maximum epochs may change
    resume = _resumed(tmp_path / "models" / "last.pt", same, run_dir=tmp_path)
    assert resume.resumed_epoch == 1 and same["record"].loaded == saved
    assert json.loads((tmp_path / "record.json").read_text())["training"]["epochs"] == 3

    other = {"model": net, "optimizer": opt, "record": _record(learning_rate=0.5, seed=3)}
    weights = (tmp_path / "models" / "last.pt").read_bytes()
    with pytest.raises(ValueError) as err:
        _resumed(tmp_path / "models" / "last.pt", other, run_dir=tmp_path)
    message = str(err.value)
    assert "learning_rate: 0.1 in the run, 0.5 now; seed: 0 in the run, 3 now" in message and "\n" not in message
    assert f"delete {tmp_path}" in message and "--output_dir" in message
    assert (tmp_path / "models" / "last.pt").read_bytes() == weights  # nothing trained, nothing saved
    assert json.loads((tmp_path / "record.json").read_text())["training"]["seed"] == 0  # the run's record stays

    state = torch.load(tmp_path / "models" / "last.pt", weights_only=True)
    del state["record"]
    torch.save(state, tmp_path / "old.pt")  # written before checkpoints carried a record
    with caplog.at_level("WARNING"):
        old = _resumed(tmp_path / "old.pt", other)
    assert old.resumed_epoch == 1
    assert len([r for r in caplog.records if "no record of the run" in r.getMessage()]) == 1


def test_a_legacy_settings_record_is_checked_on_what_it_holds(tmp_path, caplog):
    net, opt, sched = _objects()
    engine = _trainer(net, opt, sched, [])
    _saver(tmp_path, {"model": net, "optimizer": opt}).attach(engine)
    engine.run(DATA, max_epochs=1)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    for widths in ([8, 8], [4, 4]):  # older checkpoints recorded the network and preprocessing as "settings"
        torch.save({**state, "settings": {"widths": widths}}, tmp_path / f"legacy{widths[0]}.pt")
    with pytest.raises(ValueError, match=r"widths: \[8, 8\] in the run, \[4, 4\] now"):
        _resumed(tmp_path / "legacy8.pt", {"model": net, "optimizer": opt, "record": _record()})
    caplog.clear()
    with caplog.at_level("WARNING"):
        resumed = _resumed(tmp_path / "legacy4.pt", {"model": net, "optimizer": opt, "record": _record()})
    assert resumed.resumed_epoch == 1
    assert len([r for r in caplog.records if "records only the network" in r.getMessage()]) == 1


def test_the_next_start_removes_temporary_files_a_killed_write_left(tmp_path):
    net, opt, sched = _objects()
    (tmp_path / "tmpk1ll3d_9").write_bytes(b"PK\x03\x04 the write was killed here")
    engine = _trainer(net, opt, sched, [])
    _saver(tmp_path, {"model": net}).attach(engine)
    engine.add_event_handler(Events.STARTED, lambda e: e.terminate())
    engine.run(DATA, max_epochs=1)
    assert os.listdir(tmp_path) == []


def test_non_finite_weights_are_never_written(tmp_path):
    net, opt, sched = _objects()
    engine = _trainer(net, opt, sched, [])
    after_first = {}
    engine.add_event_handler(Events.EPOCH_COMPLETED(once=1), lambda e: after_first.update(
        {k: v.clone() for k, v in net.state_dict().items()}))
    engine.add_event_handler(Events.EPOCH_COMPLETED(once=2), lambda e: net.weight.data.fill_(float("nan")))
    _saver(tmp_path, {"model": net}).attach(engine)
    with pytest.raises(RuntimeError, match=rf"not saving {tmp_path / 'last.pt'}: the weights of 'model' \(3 values\) "
                                           r"are NaN/Inf after epoch 2; the previous file is kept"):
        engine.run(DATA, max_epochs=2)
    kept = torch.load(tmp_path / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(kept[k], after_first[k]) for k in after_first)

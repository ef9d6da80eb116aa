"""Handing blocks to workers in bands of neighbours."""

from __future__ import annotations

from fieldtruth.pipelines.placement import WorkerBands


def _drain(bands: WorkerBands[int], worker: str | None) -> list[tuple[int, str | None]]:
    taken = []
    while (placed := bands.next_for(worker)) is not None:
        taken.append(placed)
    return taken


def test_each_worker_gets_one_contiguous_band_and_all_start_at_once() -> None:
    bands = WorkerBands(list(range(10)), ["tcp://b:2", "tcp://a:1", "tcp://c:3"])
    assert bands.first(6) == [(0, "tcp://a:1"), (4, "tcp://b:2"), (7, "tcp://c:3"),
                              (1, "tcp://a:1"), (5, "tcp://b:2"), (8, "tcp://c:3")]
    assert bands.next_for("tcp://c:3") == (9, "tcp://c:3")
    assert bands.next_for("tcp://a:1") == (2, "tcp://a:1")
    assert len(bands) == 2


def test_a_worker_whose_band_is_done_takes_the_far_end_of_the_longest_band() -> None:
    bands = WorkerBands(list(range(9)), ["tcp://a:1", "tcp://b:2"])  # a: 0..4, b: 5..8
    assert bands.first(2) == [(0, "tcp://a:1"), (5, "tcp://b:2")]
    assert [b for b, _ in _drain(bands, "tcp://b:2")] == [6, 7, 8, 4, 3, 2, 1]
    assert len(bands) == 0 and bands.next_for("tcp://a:1") is None


def test_a_worker_that_joined_late_helps_from_the_far_end() -> None:
    bands = WorkerBands(list(range(6)), ["tcp://a:1", "tcp://b:2"])
    assert bands.next_for("tcp://new:9") == (2, "tcp://new:9")
    assert bands.next_for(None) == (5, None)


def test_with_no_worker_known_blocks_go_out_in_grid_order_to_any_worker() -> None:
    bands = WorkerBands(list(range(5)), [])
    assert bands.first(2) == [(0, None), (1, None)]
    assert _drain(bands, None) == [(2, None), (3, None), (4, None)]


def test_every_block_is_handed_out_exactly_once() -> None:
    bands = WorkerBands(list(range(23)), ["w1", "w2", "w3", "w4"])
    taken = [b for b, _ in bands.first(5)]
    for i in range(100):
        if (placed := bands.next_for(f"w{i % 5}")) is not None:  # "w0" is not a known worker
            taken.append(placed[0])
    assert sorted(taken) == list(range(23))

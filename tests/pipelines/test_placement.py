"""Handing blocks to workers in bands of neighbours."""

from __future__ import annotations

from fieldtruth.pipelines.placement import WorkerBands


def _drain(bands: WorkerBands[int], worker: str | None) -> list[tuple[int, str | None]]:
    taken = []
    while (placed := bands.next_for(worker)) is not None:
        taken.append(placed)
    return taken


def test_each_worker_gets_one_contiguous_band_and_all_start_at_once() -> None:
    bands = WorkerBands(list(range(10)), ["tcp://b:2", "tcp://a:1", "tcp://c:3"])  # a: 0..2, b: 3..6, c: 7..9
    assert bands.first(6) == [(0, "tcp://a:1"), (3, "tcp://b:2"), (7, "tcp://c:3"),
                              (1, "tcp://a:1"), (4, "tcp://b:2"), (8, "tcp://c:3")]
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


def test_bands_hold_equal_work_not_equal_counts() -> None:
    work = [4.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # edge tiles cut short at the end
    bands = WorkerBands(list(range(10)), ["a", "b"], work=work.__getitem__)
    assert [b for b, _ in _drain(bands, "a")][:3] == [0, 1, 9]  # a: the two large blocks, then helps b
    bands = WorkerBands(list(range(10)), ["a", "b"], work=work.__getitem__)
    assert [b for b, _ in _drain(bands, "b")][:8] == [2, 3, 4, 5, 6, 7, 8, 9]  # b's: the eight small ones


def test_a_worker_done_takes_from_the_band_with_the_most_work_left_not_the_longest() -> None:
    work = [5.0, 5.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # a: 0..1 (10), b: 2..9 (12)
    bands = WorkerBands(list(range(10)), ["a", "b"], work=work.__getitem__)
    assert bands.next_for("a") == (0, "a") and bands.next_for("b") == (2, "b")
    assert bands.next_for("c") == (9, "c")  # b: 7 blocks, work 7 left; a: 1 block, work 5
    for _ in range(3):
        bands.next_for("b")  # b takes 3, 4, 5: work 3 left, a's 5 is now the most
    assert bands.next_for("c") == (1, "c")
    assert [b for b, _ in _drain(bands, "c")] == [8, 7, 6]

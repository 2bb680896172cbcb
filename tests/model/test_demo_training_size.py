"""The demo's model rests on enough frauds (issue 14 item 3).

`runner demo` trains on `demo.SYNTHETIC_TRAIN_ROWS` synthetic rows (seed `demo.TRAIN_SEED`)
when there is no data/creditcard.csv. Its threshold table is computed on the test part of
the lab's 80/20 split, so that part must hold at least 100 frauds for precision and recall
to mean something. This runs the training's own split on the demo's rows, without training.
"""
from __future__ import annotations

MIN_TEST_FRAUDS = 100


def test_demo_training_set_gives_at_least_100_test_frauds(spark):
    from runner.tools import demo
    from runner.tools import train as training

    data = training.load_synthetic(demo.DemoOptions().train_rows, seed=demo.TRAIN_SEED)
    # The split is the one train() makes: same deduplication, same createDataFrame (one Arrow
    # batch per partition, so the partitioning does not depend on the session's master), same seed.
    _, test = training.split(spark, data.frame.drop_duplicates())
    frauds = test.filter(f"{training.LABEL} = 1").count()
    assert frauds >= MIN_TEST_FRAUDS, (
        f"the demo's {demo.DemoOptions().train_rows:,} synthetic training rows leave {frauds} frauds "
        f"in the test part; raise demo.SYNTHETIC_TRAIN_ROWS")

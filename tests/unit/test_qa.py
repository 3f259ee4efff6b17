"""QA colours, representative score, validation."""
import pytest

from solarpipe.qa import QAScore, QAScorePool, colour, score_fraction


@pytest.mark.parametrize("score,expected", [(0.0, "red"), (0.33, "red"), (0.34, "yellow"),
                                            (0.66, "yellow"), (0.67, "blue"), (0.90, "blue"),
                                            (0.91, "green"), (1.0, "green"), (None, "grey")])
def test_colour_bands(score, expected):
    assert colour(score) == expected


def test_pool_representative_is_lowest_and_round_trips():
    pool = QAScorePool([QAScore(0.9, "a"), QAScore(0.4, "b", metric_name="m", metric_value=3),
                        QAScore(1.0, "c")])
    assert pool.representative.shortmsg == "b"
    assert [s.shortmsg for s in pool.sorted()] == ["b", "a", "c"]
    back = QAScorePool.from_list(pool.to_list())
    assert back.representative_score == 0.4 and back.scores[1].metric_value == 3
    assert QAScorePool().representative is None


def test_score_validation_and_fraction():
    with pytest.raises(ValueError):
        QAScore(1.5, "bad")
    assert score_fraction(0.0) == 1.0
    assert score_fraction(0.5) == 0.0
    assert score_fraction(0.25) == pytest.approx(0.5)

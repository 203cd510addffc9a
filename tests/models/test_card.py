"""The model card's kind: written by every trainer, read in one place."""

from __future__ import annotations

import pytest

from models import card


def test_the_card_records_its_kind():
    written = card.model_card({"test": {"gap@20": 0.5}}, kind=card.FUSION, data={"x": 1})
    assert written["kind"] == "text+av" and written["data"] == {"x": 1}
    assert card.kind_of(written) == card.FUSION
    with pytest.raises(ValueError, match="Received: kind='audio'"):
        card.model_card({}, kind="audio")


@pytest.mark.parametrize(
    "written, kind, mode",
    [
        ({"kind": "text"}, "text", "text"),
        ({"kind": "text+av"}, "text+av", "text"),
        ({"kind": "yt8m-frames"}, "yt8m-frames", "frames"),
        ({"features": "yt8m", "av": {"frame_level": False}}, "yt8m-video", "video"),
        ({"features": "yt8m", "av": {"frame_level": True}}, "yt8m-frames", "frames"),
        ({"hparams": {}}, "text", "text"),  # a text card from before ``kind``
    ],
)
def test_every_consumer_reads_one_kind(written, kind, mode):
    assert card.kind_of(written) == kind
    assert card.input_mode(kind) == mode

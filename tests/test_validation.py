"""Input validation helpers and warnings at the caller."""

import warnings

from sklearn_mvn._validation import warn_at_caller


def test_warn_at_caller_skips_library_frames():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        warn_at_caller("message", UserWarning)
    assert record[0].filename == __file__
    assert record[0].category is UserWarning

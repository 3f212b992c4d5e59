from __future__ import annotations

import hookshield
import hookshield.django


def test_public_names_are_pinned() -> None:
    assert hookshield.__all__ == ["ClientIdentity", "Code", "Rejection", "__version__"]
    assert hookshield.django.__all__ == ["webhook"]
    assert sorted(hookshield.__all__) == hookshield.__all__

"""Suite-wide setup: the shared helpers in tests/support get pytest's assertion rewriting too."""

import pytest

pytest.register_assert_rewrite("support")

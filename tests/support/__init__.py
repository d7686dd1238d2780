"""What the tests share, in one place: actors, story steps, places, photos, databases.

Test modules and conftest files import shared helpers from here only, never from another
test module or another package's conftest (tests/test_test_layout.py checks it). Fixtures
defined here reach a package's tests by being imported into its conftest.py.
"""

from collections.abc import Callable

#: `as_user` and its kind: headers of a signed-in user, by username.
Headers = Callable[[str], dict[str, str]]
#: `good_jpeg` and its kind: a distinct phone photo per call, EXIF fields by keyword.
Jpeg = Callable[..., bytes]

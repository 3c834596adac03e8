import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def sdroot(tmp_path_factory):
    from render_tools import systemd_analyze, systemd_root

    systemd_analyze()
    return systemd_root(tmp_path_factory.mktemp("systemd"))

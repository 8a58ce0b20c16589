"""A SIMULATED OpenStack API for tests and benchmarks (see README.md here).

    from tests.fake_openstack import FakeCloud, clouds_yaml

    with FakeCloud("alpha", regions=("RegionOne", "RegionTwo"), servers=3) as alpha:
        config = clouds_yaml(alpha)   # write it as YAML, point OS_CLIENT_CONFIG_FILE at it
        alpha.count("/servers/detail")
"""

from tests.fake_openstack.server import FakeCloud, LoggedRequest, clouds_yaml

__all__ = ["FakeCloud", "LoggedRequest", "clouds_yaml"]

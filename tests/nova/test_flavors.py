"""Flavor → Placement resources, following Nova's rules."""

from __future__ import annotations

import json

import pytest

from nova_audit_ops.nova.flavors import FlavorError, parse_flavor, resources, unhealable


def serialized(**data: object) -> str:
    base = {"vcpus": 2, "memory_mb": 2048, "root_gb": 20, "ephemeral_gb": 5, "swap": 1536}
    base.update(data)
    return json.dumps({"cur": {"nova_object.name": "Flavor", "nova_object.data": base}})


def test_root_ephemeral_and_swap_rounded_up() -> None:
    flavor = parse_flavor(serialized())
    assert resources(flavor, volume_backed=False) == {"VCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 27}


def test_volume_backed_leaves_the_root_disk_out() -> None:
    assert resources(parse_flavor(serialized()), volume_backed=True)["DISK_GB"] == 7
    no_disk = parse_flavor(serialized(ephemeral_gb=0, swap=0))
    assert "DISK_GB" not in resources(no_disk, volume_backed=True)


def test_dedicated_cpus_are_pcpu_plus_isolated_emulator_thread() -> None:
    flavor = parse_flavor(serialized(extra_specs={"hw:cpu_policy": "dedicated"}))
    assert resources(flavor, False) == {"PCPU": 2, "MEMORY_MB": 2048, "DISK_GB": 27}
    isolated = parse_flavor(
        serialized(
            extra_specs={"hw:cpu_policy": "dedicated", "hw:emulator_threads_policy": "isolate"}
        )
    )
    assert resources(isolated, False)["PCPU"] == 3
    by_image = parse_flavor(serialized())
    assert "PCPU" in resources(by_image, False, image_cpu_policy="dedicated")


def test_resources_extra_specs_override_and_zero_removes() -> None:
    flavor = parse_flavor(
        serialized(
            extra_specs={
                "resources:DISK_GB": "0",
                "resources:CUSTOM_GOLD": "1",
                "resources1:CUSTOM_GOLD": "1",
                "resources:MEMORY_MB": "1024",
            }
        )
    )
    assert resources(flavor, False) == {"VCPU": 2, "MEMORY_MB": 1024, "CUSTOM_GOLD": 2}


@pytest.mark.parametrize(
    ("specs", "needle"),
    [
        ({"resources:VGPU": "1"}, "VGPU"),
        ({"accel:device_profile": "gpu"}, "device profile"),
        ({"hw:cpu_policy": "mixed", "hw:cpu_dedicated_mask": "^0"}, "mixed"),
    ],
)
def test_what_must_not_be_healed_says_why(specs: dict[str, str], needle: str) -> None:
    reason = unhealable(parse_flavor(serialized(extra_specs=specs)))
    assert reason and needle in reason
    assert unhealable(parse_flavor(serialized())) is None


@pytest.mark.parametrize("raw", [None, "", "{}", '{"cur": {"nova_object.data": {"vcpus": "x"}}}'])
def test_malformed_flavor_is_a_clear_error(raw: str | None) -> None:
    with pytest.raises(FlavorError, match="flavor"):
        parse_flavor(raw)


def test_a_resources_extra_spec_that_is_no_number_is_a_flavor_error() -> None:
    flavor = parse_flavor(serialized(extra_specs={"resources:VCPU": "two"}))
    with pytest.raises(FlavorError, match=r"resources:VCPU = 'two' is not a whole number"):
        resources(flavor, volume_backed=False)

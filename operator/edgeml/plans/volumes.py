"""Pure: which pod volumes a training template may give its Job.

The operator creates the Job, so whatever volume an EdgeModel names is mounted with the
operator's rights, not its author's. The allow-list (Helm value
`training.allowedVolumeTypes`) is the same one the chart's ValidatingAdmissionPolicy
enforces; the operator checks it again so a cluster without the policy refuses too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RESERVED_VOLUME = "tmp"
"""The Job's own emptyDir at /tmp (its root filesystem is read-only)."""


def volume_type(volume: Mapping[str, Any]) -> list[str]:
    """The source keys of a Pod-spec volume (exactly one in a valid volume)."""
    return sorted(key for key in volume if key != "name")


def volumes_problem(
    volumes: Sequence[Mapping[str, Any]],
    mounts: Sequence[Mapping[str, Any]],
    allowed_types: Sequence[str],
    where: str,
) -> str | None:
    """Why the template's volumes or mounts cannot be given to a Job, else None.

    `allowed_types` empty means the operator does not restrict volume types (the
    mounts are still checked against the volumes)."""
    names: set[str] = set()
    for index, volume in enumerate(volumes):
        name = volume.get("name")
        label = f"{where}.volumes[{index}]"
        if not isinstance(name, str) or not name:
            return f"{label} has no name"
        if name == RESERVED_VOLUME:
            return f"{label}: the name {name!r} is the Job's own /tmp volume; pick another"
        if name in names:
            return f"{label}: the name {name!r} is used twice"
        names.add(name)
        kinds = volume_type(volume)
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            return f"{label} ({name}) must set exactly one volume source, not: {found}"
        if allowed_types and kinds[0] not in allowed_types:
            return (
                f"{label} ({name}): {kinds[0]} volumes are not allowed; training Jobs may "
                f"mount {', '.join(allowed_types)} (the operator's "
                "training.allowedVolumeTypes, Helm value)"
            )
    for index, mount in enumerate(mounts):
        name = mount.get("name")
        label = f"{where}.volumeMounts[{index}]"
        if name not in names:
            return f"{label} mounts {name!r}, which {where}.volumes does not define"
        path = mount.get("mountPath")
        if not isinstance(path, str) or not path.startswith("/"):
            return f"{label} ({name}) needs an absolute mountPath"
        if path.rstrip("/") == "/tmp":
            return f"{label} ({name}): /tmp is the Job's own scratch volume; mount elsewhere"
    return None

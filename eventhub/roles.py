"""The four roles and the questions views ask about them.

Viewer reads everything; Designer also changes the design and the catalog;
Operator also acts on dead letters and redrive jobs; Admin does all of it and
manages users. Roles are Django groups (created by a data migration), so an
admin assigns them in the admin site. Superusers hold every role.

Seeing payload fields a schema marks sensitive (`"x-eventhub-pii": true`) is a
permission, not a role: `designer.view_sensitive`, given to Operator and Admin
by designer's migration 0004 and assignable to any group or user in the admin.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

VIEWER = "Viewer"
DESIGNER = "Designer"
OPERATOR = "Operator"
ADMIN = "Admin"
ROLES = (VIEWER, DESIGNER, OPERATOR, ADMIN)
VIEW_SENSITIVE = "designer.view_sensitive"
SENSITIVE_BY_DEFAULT = (OPERATOR, ADMIN)  # roles a new group of which may see sensitive fields


def roles_of(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, "_eventhub_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._eventhub_roles = cached
    return cached


def has_role(user, role: str) -> bool:
    held = roles_of(user)
    return role in held or ADMIN in held


def can_design(user) -> bool:
    return has_role(user, DESIGNER)


def can_operate(user) -> bool:
    return has_role(user, OPERATOR)


def can_view_sensitive(user) -> bool:
    """Whether payloads are shown to `user` with their sensitive fields (see deadletters.sensitive)."""
    return bool(user is not None and user.is_authenticated and user.has_perm(VIEW_SENSITIVE))


def require_role(user, role: str) -> None:
    if not has_role(user, role):
        raise PermissionDenied(f"This needs the {role} role.")


def context_processor(request) -> dict:
    user = getattr(request, "user", None)
    if user is None:
        return {}
    return {"can_design": can_design(user), "can_operate": can_operate(user)}


class _RoleForWrites(BasePermission):
    """Logged-in users read; writes need `role`."""

    role = ADMIN

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or has_role(request.user, self.role)


class DesignerOrReadOnly(_RoleForWrites):
    role = DESIGNER


class OperatorOrReadOnly(_RoleForWrites):
    role = OPERATOR

"""The view_sensitive permission, given to the Operator and Admin roles.

Django creates a model's permissions only after all migrations ran
(post_migrate), so the row is made here to be granted in the same run. After
this, the permission is an ordinary one: an admin gives it to other groups or
users, or takes it from these, in the admin site; no later migrate undoes that.
"""

from django.db import migrations

GRANTED_TO = ("Operator", "Admin")
NAME = "Can see payload fields marked sensitive (x-eventhub-pii)"


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="designer", model="eventtype")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="view_sensitive", defaults={"name": NAME}
    )
    for group in Group.objects.filter(name__in=GRANTED_TO):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="designer", codename="view_sensitive").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("designer", "0003_flowstep_relink"),
        ("eventhub", "0001_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="eventtype",
            options={"ordering": ["name"], "permissions": [("view_sensitive", NAME)]},
        ),
        migrations.RunPython(grant, revoke),
    ]

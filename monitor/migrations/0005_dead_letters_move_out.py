"""Dead letters, redrive jobs and the audit trail now belong to the `deadletters` app.

State only: the tables keep their names and rows (see deadletters/migrations/0001_initial.py).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("monitor", "0004_dead_letter_payload_problem_unstored"),
        ("deadletters", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="AuditEntry"),
                migrations.DeleteModel(name="UnstoredDeadLetter"),
                migrations.DeleteModel(name="DeadLetter"),
                migrations.DeleteModel(name="RedriveJob"),
            ],
        ),
    ]

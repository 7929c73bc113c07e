"""FlowStep.time_budget_s: how long a flow check waits for the step's event (eventstore.flow_checks)."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("designer", "0004_view_sensitive")]

    operations = [
        migrations.AddField(
            model_name="flowstep",
            name="time_budget_s",
            field=models.PositiveIntegerField(
                default=30,
                help_text="Seconds after the step it follows.",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
    ]

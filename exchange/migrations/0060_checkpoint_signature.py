"""Checkpoints carry their Ed25519 signature (and the signing key's id) and the event hashes they sealed."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('exchange', '0051_job_runs'),
    ]

    operations = [
        migrations.AddField(
            model_name='checkpoint',
            name='key_id',
            field=models.CharField(blank=True, default='', help_text="The signing key's id.", max_length=16),
        ),
        migrations.AddField(
            model_name='checkpoint',
            name='leaves',
            field=models.BinaryField(blank=True, help_text='The sealed event hashes, 32 bytes each in order: verification names an event edited and rehashed after sealing.', null=True),
        ),
        migrations.AddField(
            model_name='checkpoint',
            name='signature',
            field=models.CharField(blank=True, default='', help_text='Ed25519, base64.', max_length=100),
        ),
    ]

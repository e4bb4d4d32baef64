"""Joins the registry rules' migrations (0100, 0101) and the market rulebooks' (0120): nothing to do."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("exchange", "0120_market_rulebooks")]

    operations = []

"""Loads the transformed rows: writes a data table, an artifact and outputs."""

import json
import os

with open(os.environ["SLUICE_INPUTS"]) as f:
    inputs = json.load(f)

eu = int(inputs["transform_eu"]["eu_rows"])
us = int(inputs["transform_us"]["us_rows"])
rows = [
    {"region": "eu", "store": "paris", "amount": 120.5},
    {"region": "eu", "store": "berlin", "amount": 99.0},
    {"region": "us", "store": "austin", "amount": 75.25},
][: eu + us]

with open(os.environ["SLUICE_DATA"], "w") as f:
    f.write("region,store,amount\n")
    for row in rows:
        f.write(f"{row['region']},{row['store']},{row['amount']}\n")

summary = os.path.join(os.environ["SLUICE_ARTIFACTS"], "summary.txt")
with open(summary, "w") as f:
    f.write(f"loaded {len(rows)} rows for {os.environ['SLUICE_VAR_REGION']}\n")

with open(os.environ["SLUICE_OUTPUT"], "a") as f:
    f.write(f"loaded={len(rows)}\n")

print(f"loaded {len(rows)} rows")

"""Human verification of leads: the tamper-evident decision ledger.

A detection is a lead, never a finding. This room records who decided what about each site, when,
how and on what evidence, in an append-only hash chain (:mod:`fieldtruth.review.ledger`). It reads the
run folder's ``detections.parquet`` directly and imports no other fieldtruth room.
"""

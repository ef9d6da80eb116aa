"""Human verification of leads: the tamper-evident decision ledger and everything built on it.

A detection is a lead, never a finding. This room records who decided what about each site, when,
how and on what evidence, in an append-only hash chain (:mod:`~fieldtruth.review.ledger`) whose
decisions commit to the lead they were made on (:mod:`~fieldtruth.review.vouch` checks the detections
against them), applies one set of rules to what people give (:mod:`~fieldtruth.review.rules`: one
canonical reviewer id per person, visit times and positions), orders the verification queue
(:mod:`~fieldtruth.review.queue`), imports field decisions all-or-nothing
(:mod:`~fieldtruth.review.fieldfile`), writes the only actionable list
(:mod:`~fieldtruth.review.actionable`) and erases sites for good, looking into every file first
(:mod:`~fieldtruth.review.erasure`).
It reads the run folder's files directly and imports no other fieldtruth room.
"""

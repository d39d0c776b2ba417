"""The grader service: the store, the submission queue with leases, accounts, the exercise
catalog, the gradebook, grading workers (embedded or Celery, decided once in
:mod:`grader.service.dispatch`) and the FastAPI app with its API and pages.

Imports: :mod:`grader.grading`, :mod:`grader.format`, the top-level settings and errors.
The top of the house: nothing imports it but the CLI.
"""

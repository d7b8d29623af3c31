"""The service against its own OpenAPI document, fuzzed by schemathesis (a client nobody here wrote).

Every endpoint gets generated requests, valid and invalid by the document, and every answer is checked by
schemathesis' checks: no 5xx, status codes, content types, headers and bodies as documented, invalid requests
refused. One check is left out: ``positive_data_acceptance`` expects every request the document allows to
succeed, but the document can only say "bytes", not "bytes of a decodable picture", so random bytes rightly
get 415/422. About 400 cases (200 for each POST endpoint); seconds here.

    python -m pytest tests/test_schemathesis.py
"""

import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from fashion_cnn.serving.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(untrained_model_file):
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(str(untrained_model_file)))


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@hypothesis.settings(max_examples=200, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_every_answer_matches_the_document(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance])

"""The JSON error envelope: every error a user causes is {"error": {code, message, details?}}."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from service.main import error_response


def test_details_holding_records_with_datetimes_serialize() -> None:
    created = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    response = error_response(422, "adapter_check_failed", "no change", {"created_at": created})
    assert response.status_code == 422
    assert json.loads(response.body) == {
        "error": {
            "code": "adapter_check_failed",
            "message": "no change",
            "details": {"created_at": "2026-11-25T12:00:00+00:00"},
        }
    }


def test_details_are_left_out_when_there_are_none() -> None:
    response = error_response(404, "not_found", "collection col_x not found")
    assert json.loads(response.body) == {
        "error": {"code": "not_found", "message": "collection col_x not found"}
    }

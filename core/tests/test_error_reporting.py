from core.observability import FILTERED, error_event_scrub


def test_error_reports_carry_no_token_key_or_body() -> None:
    event = {
        "request": {
            "headers": {"Authorization": "Bearer abc", "IFTTT-Service-Key": "k", "User-Agent": "IFTTT"},
            "data": {"refresh_token": "r"},
            "cookies": {"sessionid": "s"},
            "query_string": "code=secret",
        },
        "extra": {"access_token": "t", "device": "lamp"},
    }
    scrubbed = error_event_scrub(event)
    request = scrubbed["request"]
    assert request["headers"]["Authorization"] == FILTERED and request["headers"]["IFTTT-Service-Key"] == FILTERED
    assert request["headers"]["User-Agent"] == "IFTTT"
    assert request["data"] == FILTERED and request["cookies"] == FILTERED and request["query_string"] == FILTERED
    assert scrubbed["extra"] == {"access_token": FILTERED, "device": "lamp"}

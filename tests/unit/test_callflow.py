"""The call state machine, driven directly with events and a fake clock."""

from __future__ import annotations

from callrec import events as ev
from callrec.callflow import (
    AnnouncementDone,
    CallFinished,
    CallFlow,
    CommitCapture,
    DiscardCapture,
    EraseRecording,
    Evidence,
    PrivacyRules,
    StartAnnouncement,
    StartCapture,
    State,
    StopAnnouncement,
    StopRecording,
)
from callrec.config import LineConfig
from callrec.privacy.donotrecord import Entry, Matcher


def kinds(actions):
    return [type(a) for a in actions]


def flow(**kw) -> CallFlow:
    return CallFlow(LineConfig(**kw))


def answer_incoming(f: CallFlow, t: float = 0.0) -> None:
    f.handle(ev.Ring(True, at=t))
    f.handle(ev.Ring(False, at=t + 1.5))
    f.handle(ev.CallerId("0612345678", "DUPONT", at=t + 2.0))
    f.handle(ev.Ring(True, at=t + 5.0))
    f.handle(ev.Ring(False, at=t + 6.5))
    actions = f.handle(ev.Hook(True, at=t + 7.0))
    assert kinds(actions) == [StartCapture, StartAnnouncement]
    assert actions[1].direction == "in"


def test_incoming_call_full_path() -> None:
    f = flow()
    answer_incoming(f)
    assert f.state is State.ANNOUNCING
    assert f.call is not None and f.call.ring_count == 2
    assert (f.call.number, f.call.name) == ("0612345678", "DUPONT")
    assert f.call.answered_at == 7.0
    assert kinds(f.handle(AnnouncementDone(True, at=10.0))) == [CommitCapture]
    assert f.state is State.RECORDING
    assert f.handle(ev.Tick(at=30.0)) == []
    actions = f.handle(ev.Hook(False, at=60.0))
    assert kinds(actions) == [StopRecording, CallFinished]
    assert actions[0].reason == "hangup"
    assert actions[1].outcome == "recorded"
    assert f.state is State.IDLE and f.call is None


def test_polarity_reversal_ends_a_recording() -> None:
    f = flow()
    answer_incoming(f)
    f.handle(AnnouncementDone(True, at=10.0))
    actions = f.handle(ev.PolarityReversal(-1, at=20.0))
    assert kinds(actions) == [StopRecording, CallFinished]
    assert actions[0].reason == "clear_down"


def test_line_battery_loss_ends_a_recording() -> None:
    f = flow()
    answer_incoming(f)
    f.handle(AnnouncementDone(True, at=10.0))
    assert f.handle(ev.LoopVoltage(30.0, at=11.0)) == []  # normal reading, nothing happens
    assert f.handle(ev.LoopVoltage(-8.0, at=11.5)) == []  # reversed polarity is not a loss
    actions = f.handle(ev.LoopVoltage(0.4, at=12.0))
    assert kinds(actions) == [StopRecording, CallFinished]
    assert actions[0].reason == "line_down"


def test_silence_never_ends_a_call() -> None:
    f = flow()
    answer_incoming(f)
    f.handle(AnnouncementDone(True, at=10.0))
    for t in range(11, 4000, 7):
        assert f.handle(ev.Tick(at=float(t))) == []
    assert f.state is State.RECORDING


def test_unanswered_call_leaves_no_recording() -> None:
    f = flow(ring_timeout_s=8.0)
    f.handle(ev.Ring(True, at=0.0))
    f.handle(ev.Ring(False, at=1.5))
    f.handle(ev.Ring(True, at=5.0))
    f.handle(ev.Ring(False, at=6.5))
    assert f.handle(ev.Tick(at=10.0)) == []  # still within the ring timeout
    actions = f.handle(ev.Tick(at=15.0))
    assert kinds(actions) == [CallFinished]
    assert actions[0].outcome == "unanswered"
    assert f.state is State.IDLE


def test_hangup_during_announcement_discards_everything() -> None:
    f = flow()
    answer_incoming(f)
    actions = f.handle(ev.Hook(False, at=8.0))
    assert kinds(actions) == [StopAnnouncement, DiscardCapture, CallFinished]
    assert actions[2].outcome == "ended_during_announcement"
    # A late completion report from the player must not start a recording.
    assert f.handle(AnnouncementDone(True, at=8.1)) == []
    assert f.state is State.IDLE


def test_no_announcement_no_recording() -> None:
    f = flow()
    answer_incoming(f)
    actions = f.handle(AnnouncementDone(False, error="device gone", at=7.1))
    assert kinds(actions) == [DiscardCapture]
    assert f.state is State.NOT_RECORDED
    assert f.not_recorded_reason == "device gone"
    actions = f.handle(ev.Hook(False, at=30.0))
    assert kinds(actions) == [CallFinished]
    assert actions[0].outcome == "not_recorded"


def test_outgoing_answered_by_delay_after_last_digit() -> None:
    f = flow(outgoing_answer_delay_s=6.0)
    assert f.handle(ev.Hook(True, at=0.0)) == []
    assert f.state is State.DIALLING
    for i, d in enumerate("0145"):
        f.handle(ev.Digit(d, at=1.0 + i))
    assert f.handle(ev.Tick(at=9.5)) == []  # 5.5 s after the last digit
    actions = f.handle(ev.Tick(at=10.1))
    assert kinds(actions) == [StartCapture, StartAnnouncement]
    assert actions[1].direction == "out"
    assert f.call is not None and f.call.digits == "0145"


def test_outgoing_answered_by_polarity_reversal() -> None:
    f = flow(outgoing_answer_delay_s=60.0)
    f.handle(ev.Hook(True, at=0.0))
    actions = f.handle(ev.PolarityReversal(-1, at=2.0))
    assert kinds(actions) == [StartCapture, StartAnnouncement]
    f.handle(AnnouncementDone(True, at=5.0))
    assert kinds(f.handle(ev.Hook(False, at=9.0))) == [StopRecording, CallFinished]


def test_outgoing_abandoned_before_answer() -> None:
    f = flow()
    f.handle(ev.Hook(True, at=0.0))
    actions = f.handle(ev.Hook(False, at=1.0))
    assert kinds(actions) == [CallFinished] and actions[0].outcome == "abandoned"


def test_back_to_back_calls() -> None:
    f = flow()
    for start in (0.0, 100.0, 200.0):
        answer_incoming(f, start)
        f.handle(AnnouncementDone(True, at=start + 10))
        assert kinds(f.handle(ev.Hook(False, at=start + 11))) == [StopRecording, CallFinished]
        # the next call starts right after the hang-up
    assert f.state is State.IDLE


def test_caller_id_before_first_ring_is_kept() -> None:
    f = flow()
    f.handle(ev.CallerId("0033123", None, at=0.0))
    f.handle(ev.Ring(True, at=0.5))
    assert f.call is not None and f.call.number == "0033123"


def test_stale_caller_id_is_not_attached_to_a_later_call() -> None:
    f = flow(ring_timeout_s=8.0)
    f.handle(ev.CallerId("0033123", None, at=0.0))
    f.handle(ev.Ring(True, at=60.0))
    assert f.call is not None and f.call.number is None


def test_caller_id_decoded_just_after_the_answer_still_belongs_to_the_call() -> None:
    # The line analysis works in batches: a caller ID sent in the last ring gap can be reported
    # after a quick answer. Exchanges send it only before the answer, so it is this call's.
    f = flow()
    f.handle(ev.Ring(True, at=0.0))
    f.handle(ev.Hook(True, at=2.0))
    f.handle(ev.CallerId("0612345678", "DUPONT", at=2.3))
    assert f.state is State.ANNOUNCING
    assert f.call is not None and (f.call.number, f.call.name) == ("0612345678", "DUPONT")


def test_caller_id_after_the_answer_never_replaces_one_already_known() -> None:
    f = flow()
    answer_incoming(f)
    f.handle(ev.CallerId("0999999999", "OTHER", at=7.5))
    assert f.call is not None and (f.call.number, f.call.name) == ("0612345678", "DUPONT")
    f.handle(AnnouncementDone(True, at=12.0))
    f.handle(ev.CallerId("0999999999", "OTHER", at=13.0))  # recording: never
    assert f.call.number == "0612345678"


def test_caller_id_is_never_taken_during_an_outgoing_call() -> None:
    f = flow(outgoing_answer_delay_s=1.0)
    f.handle(ev.Hook(True, at=0.0))
    f.handle(ev.Tick(at=1.5))
    assert f.state is State.ANNOUNCING
    f.handle(ev.CallerId("0999999999", None, at=2.0))
    assert f.call is not None and f.call.number is None


def test_lines_that_never_record() -> None:
    f = flow(record_incoming=False)
    f.handle(ev.Ring(True, at=0.0))
    assert f.handle(ev.Hook(True, at=1.0)) == []
    assert f.state is State.NOT_RECORDED
    assert kinds(f.handle(ev.Hook(False, at=5.0))) == [CallFinished]


def test_board_fault_during_announcement_means_no_recording() -> None:
    f = flow()
    answer_incoming(f)
    actions = f.handle(ev.BoardFault(part="mcu", ok=False, detail="link lost", at=8.0))
    assert kinds(actions) == [StopAnnouncement, DiscardCapture]
    assert f.state is State.NOT_RECORDED and "mcu" in f.not_recorded_reason
    assert f.handle(AnnouncementDone(True, at=9.0)) == []  # too late: still not recorded
    assert kinds(f.handle(ev.Hook(False, at=20.0))) == [CallFinished]


def test_reversal_after_a_guessed_answer_restarts_the_announcement() -> None:
    f = flow(outgoing_answer_delay_s=2.0)
    f.handle(ev.Hook(True, at=0.0))
    assert kinds(f.handle(ev.Tick(at=2.1))) == [StartCapture, StartAnnouncement]
    assert f.call is not None and f.call.answered_by == "delay"
    actions = f.handle(ev.PolarityReversal(-1, at=3.0))
    assert kinds(actions) == [StopAnnouncement, DiscardCapture, StartCapture, StartAnnouncement]
    assert f.state is State.ANNOUNCING
    assert f.call.answered_by == "reversal" and f.call.answered_at == 3.0
    f.handle(AnnouncementDone(True, at=6.0))
    # Once answered by a reversal, the next reversal is the end of the call.
    assert kinds(f.handle(ev.PolarityReversal(1, at=9.0))) == [StopRecording, CallFinished]


def test_reversal_during_an_announcement_after_a_real_answer_is_a_clear_down() -> None:
    f = flow()
    f.handle(ev.Hook(True, at=0.0))
    f.handle(ev.PolarityReversal(-1, at=1.0))
    actions = f.handle(ev.PolarityReversal(1, at=2.0))
    assert kinds(actions) == [StopAnnouncement, DiscardCapture, CallFinished]


def test_disconnect_tone_ends_a_recording_when_the_line_signals_nothing() -> None:
    f = flow()
    answer_incoming(f)
    f.handle(AnnouncementDone(True, at=10.0))
    assert f.handle(ev.LineTone("ringback", at=20.0)) == []
    actions = f.handle(ev.LineTone("busy", at=30.0))
    assert kinds(actions) == [StopRecording, CallFinished]
    assert actions[0].reason == "disconnect_tone"


def test_keys_pressed_during_the_prompt_are_kept_for_the_privacy_policy() -> None:
    f = flow()
    answer_incoming(f)
    f.handle(ev.Digit("9", at=7.5))
    assert f.state is State.ANNOUNCING
    assert f.call is not None and f.call.keys_during_prompt == "9"


def test_withheld_caller_id_is_recorded_as_such() -> None:
    f = flow()
    f.handle(ev.Ring(True, at=0.0))
    f.handle(ev.CallerId(None, None, absence="P", source="fsk", at=1.0))
    assert f.call is not None and (f.call.number, f.call.absence) == (None, "P")


# -- saying no: refusal, objection, staff privacy --------------------------------------------
LISTED = Matcher.of([Entry("0612345678", "number"), Entry("0145", "prefix")])


def private_flow(**kw) -> CallFlow:
    rules = PrivacyRules(refusal_key="9", privacy_prefix="*0", button_window_s=30.0,
                         do_not_record=LISTED.matches)
    return CallFlow(LineConfig(**kw), rules)


def ring_and_answer(f: CallFlow, number: str | None, t: float = 0.0) -> list:
    f.handle(ev.Ring(True, at=t))
    f.handle(ev.Ring(False, at=t + 1.5))
    if number is not None:
        f.handle(ev.CallerId(number, None, at=t + 2.0))
    return f.handle(ev.Hook(True, at=t + 3.0))


def dial_and_answer(f: CallFlow, digits: str, t: float = 0.0) -> list:
    f.handle(ev.Hook(True, at=t))
    for i, d in enumerate(digits):
        f.handle(ev.Digit(d, at=t + 1.0 + 0.2 * i))
    return f.handle(ev.PolarityReversal(-1, at=t + 10.0))


def record(f: CallFlow, done_at: float) -> None:
    """The prompt completes, then the refusal grace passes: the call is written."""
    assert kinds(f.handle(AnnouncementDone(True, at=done_at))) == [StopAnnouncement]
    assert f.state is State.ANNOUNCING and not f.writing  # still only in memory
    assert kinds(f.handle(ev.Tick(at=done_at + 2.0))) == [CommitCapture]
    assert f.state is State.RECORDING and f.writing


def evidence(actions) -> Evidence:
    [e] = [a for a in actions if isinstance(a, Evidence)]
    return e


def test_refusal_key_during_the_prompt_keeps_the_call_out_entirely() -> None:
    f = private_flow()
    assert kinds(ring_and_answer(f, "0699999999")) == [StartCapture, StartAnnouncement]
    assert f.handle(ev.Digit("1", at=4.0)) == []  # other keys do nothing
    actions = f.handle(ev.Digit("9", at=4.5))
    assert kinds(actions) == [StopAnnouncement, Evidence, DiscardCapture]
    e = evidence(actions)
    assert (e.kind, e.reason, e.direction, e.line, e.number) == (
        "call.refused", "refusal key", "in", "line1", "0699999999")
    assert f.state is State.NOT_RECORDED and not f.writing
    assert "refused" in f.not_recorded_reason
    assert f.handle(AnnouncementDone(True, at=6.0)) == []  # the stopped player reports late
    assert not f.writing
    assert kinds(f.handle(ev.Hook(False, at=30.0))) == [CallFinished]
    assert f.state is State.IDLE


def test_refusal_just_after_the_prompt_is_still_honoured_nothing_written() -> None:
    f = private_flow()
    ring_and_answer(f, "0699999999")
    assert kinds(f.handle(AnnouncementDone(True, at=10.0))) == [StopAnnouncement]
    actions = f.handle(ev.Digit("9", at=11.0))  # reported 1 s after the prompt ended
    assert kinds(actions) == [StopAnnouncement, Evidence, DiscardCapture]
    assert CommitCapture not in kinds(actions) and f.state is State.NOT_RECORDED


def test_refusal_after_the_grace_is_too_late_and_the_call_is_recorded() -> None:
    f = private_flow()
    ring_and_answer(f, "0699999999")
    f.handle(AnnouncementDone(True, at=10.0))
    assert kinds(f.handle(ev.Digit("9", at=12.0))) == [CommitCapture]
    assert f.state is State.RECORDING


def test_hangup_in_the_grace_keeps_the_call_as_a_recording() -> None:
    f = private_flow()
    ring_and_answer(f, "0699999999")
    f.handle(AnnouncementDone(True, at=10.0))
    actions = f.handle(ev.Hook(False, at=10.5))
    assert kinds(actions) == [CommitCapture, StopRecording, CallFinished]
    assert actions[-1].outcome == "recorded"


def test_without_a_refusal_key_the_prompt_commits_at_once() -> None:
    f = CallFlow(LineConfig(), PrivacyRules(refusal_key=""))
    ring_and_answer(f, "0699999999")
    assert f.handle(ev.Digit("9", at=4.0)) == []
    assert kinds(f.handle(AnnouncementDone(True, at=10.0))) == [CommitCapture]


def test_caller_on_the_do_not_record_list_gets_no_announcement() -> None:
    f = private_flow()
    actions = ring_and_answer(f, "+33 6 12 34 56 78")  # listed in national form
    assert kinds(actions) == [Evidence]
    e = evidence(actions)
    assert (e.kind, e.reason, e.number) == ("call.not_recorded", "do-not-record list",
                                            "+33 6 12 34 56 78")
    assert f.state is State.NOT_RECORDED and not f.writing
    assert kinds(f.handle(ev.Hook(False, at=20.0))) == [CallFinished]


def test_listed_prefix_and_unlisted_or_withheld_callers() -> None:
    f = private_flow()
    assert kinds(ring_and_answer(f, "0145678912")) == [Evidence]
    f.handle(ev.Hook(False, at=5.0))
    assert kinds(ring_and_answer(f, None, t=100.0)) == [StartCapture, StartAnnouncement]


def test_late_caller_id_on_the_list_drops_the_held_audio() -> None:
    f = private_flow()
    assert kinds(ring_and_answer(f, None)) == [StartCapture, StartAnnouncement]
    actions = f.handle(ev.CallerId("0612345678", None, at=3.4))
    assert kinds(actions) == [StopAnnouncement, Evidence, DiscardCapture]
    assert f.state is State.NOT_RECORDED and not f.writing


def test_very_late_caller_id_on_the_list_erases_what_was_written() -> None:
    f = private_flow()
    ring_and_answer(f, None)
    record(f, 5.0)
    actions = f.handle(ev.CallerId("0612345678", None, at=7.5))
    assert kinds(actions) == [Evidence, EraseRecording]
    assert f.state is State.NOT_RECORDED and not f.writing
    # A late caller ID that is not listed changes nothing.
    g = private_flow()
    ring_and_answer(g, None)
    record(g, 5.0)
    assert g.handle(ev.CallerId("0699999999", None, at=7.5)) == []
    assert g.state is State.RECORDING


def test_outgoing_call_with_the_privacy_prefix() -> None:
    f = private_flow()
    actions = dial_and_answer(f, "*00145678912")
    assert kinds(actions) == [Evidence]
    assert evidence(actions).number is None  # staff privacy: not even a pseudonym
    assert evidence(actions).reason == "privacy prefix"
    assert f.state is State.NOT_RECORDED and not f.writing


def test_outgoing_call_to_a_listed_number_even_behind_a_service_code() -> None:
    f = private_flow()
    actions = dial_and_answer(f, "#31#0612345678")
    assert kinds(actions) == [Evidence]
    assert evidence(actions).number == "0612345678"
    f.handle(ev.Hook(False, at=20.0))
    assert kinds(dial_and_answer(f, "0699999999", t=100.0)) == [StartCapture, StartAnnouncement]


def test_never_record_line_announces_nothing_and_leaves_no_evidence() -> None:
    f = private_flow(never_record=True)
    assert ring_and_answer(f, "0699999999") == []
    assert f.state is State.NOT_RECORDED
    f.handle(ev.Hook(False, at=10.0))
    assert dial_and_answer(f, "0699999999", t=100.0) == []
    assert f.state is State.NOT_RECORDED


def test_privacy_button_before_a_call_keeps_the_next_call_private() -> None:
    f = private_flow()
    assert f.handle(ev.PrivacyButton(True, at=0.0)) == []
    assert f.handle(ev.PrivacyButton(False, at=0.2)) == []
    actions = dial_and_answer(f, "0699999999", t=10.0)
    assert kinds(actions) == [Evidence] and evidence(actions).number is None
    assert f.state is State.NOT_RECORDED
    f.handle(ev.Hook(False, at=40.0))
    # Used up by that call: the next one is recorded.
    assert kinds(ring_and_answer(f, "0699999999", t=50.0)) == [StartCapture, StartAnnouncement]


def test_privacy_button_press_expires() -> None:
    f = private_flow()
    assert f.private_until(0.0) is None
    f.handle(ev.PrivacyButton(True, at=0.0))
    window = f.privacy.button_window_s
    assert f.private_until(1.0) == window  # what the status page shows, until it expires
    assert f.private_until(window + 0.1) is None
    assert kinds(ring_and_answer(f, "0699999999", t=31.0)) == [StartCapture, StartAnnouncement]


def test_privacy_button_while_ringing_or_dialling() -> None:
    f = private_flow()
    f.handle(ev.Ring(True, at=0.0))
    f.handle(ev.PrivacyButton(True, at=1.0))
    assert kinds(f.handle(ev.Hook(True, at=2.0))) == [Evidence]
    f.handle(ev.Hook(False, at=5.0))
    f.handle(ev.Hook(True, at=10.0))
    f.handle(ev.PrivacyButton(True, at=11.0))
    assert kinds(f.handle(ev.PolarityReversal(-1, at=15.0))) == [Evidence]


def test_privacy_button_during_the_prompt_drops_the_held_audio() -> None:
    f = private_flow()
    ring_and_answer(f, "0699999999")
    actions = f.handle(ev.PrivacyButton(True, at=4.0))
    assert kinds(actions) == [StopAnnouncement, Evidence, DiscardCapture]
    assert evidence(actions).number is None and not f.writing


def test_privacy_button_during_a_recording_erases_it() -> None:
    f = private_flow()
    ring_and_answer(f, "0699999999")
    record(f, 5.0)
    actions = f.handle(ev.PrivacyButton(True, at=30.0))
    assert kinds(actions) == [Evidence, EraseRecording]
    assert f.state is State.NOT_RECORDED and not f.writing
    assert f.handle(ev.PrivacyButton(True, at=31.0)) == []  # already private
    assert kinds(f.handle(ev.Hook(False, at=60.0))) == [CallFinished]


def test_the_recording_led_is_on_only_while_audio_is_written() -> None:
    f = private_flow()
    seen = [f.writing]
    for event in [ev.Ring(True, at=0.0), ev.Ring(False, at=1.0), ev.Hook(True, at=2.0),
                  AnnouncementDone(True, at=6.0), ev.Tick(at=6.5), ev.Tick(at=8.0),
                  ev.Hook(False, at=20.0)]:
        f.handle(event)
        seen.append(f.writing)
    assert seen == [False, False, False, False, False, False, True, False]


def test_privacy_configuration_is_validated() -> None:
    import pytest

    from callrec.config import ConfigError, parse

    ok = parse({"privacy": {"refusal_key": "#", "privacy_prefix": "", "do_not_record_file": ""},
                "line": {"never_record": True}})
    assert ok.privacy.refusal_key == "#" and ok.line.never_record
    assert parse({}).privacy.refusal_key == "9" and parse({}).privacy.privacy_prefix == "*0"
    for bad in ({"refusal_key": "99"}, {"refusal_key": "x"}, {"privacy_prefix": "*0x"},
                {"privacy_button_window_s": 0}):
        with pytest.raises(ConfigError, match="privacy"):
            parse({"privacy": bad})


def test_the_generated_prompts_offer_the_refusal_key() -> None:
    from callrec.prompts import prompt_text

    assert "9" in prompt_text("en", "9") and "press 9" in prompt_text("en", "9")
    assert "touche 9" in prompt_text("fr", "9")
    assert "étoile" in prompt_text("fr", "*") and "star" in prompt_text("en", "*")
    assert "press" not in prompt_text("en", "") and "touche" not in prompt_text("fr", "")

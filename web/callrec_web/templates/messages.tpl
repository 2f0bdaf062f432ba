# Texts that the code refers to by key: flash messages, form errors, role and state names.
# One "key = text" per line; {name} is filled in by the code. A translation is a copy of this
# folder with the texts (and the other templates) translated.

# flash messages
recording_erased = Recording erased. Its audio and metadata have been deleted.
token_revoked = API token revoked.
password_changed = Password changed. Other devices logged in with this account were logged out.
user_added = Account created.
user_deleted = Account deleted.

# requests about a person (People)
request_registered = Request registered. It is due one month after its receipt.
request_closed = Request closed.
objection_recorded = The number is on the do-not-record list: its calls are no longer recorded.
dnr_added = Added to the do-not-record list: from the next call on, it is neither announced nor recorded.
dnr_removed = Removed from the do-not-record list: its calls are announced and recorded again.
dnr_unreadable = The do-not-record list cannot be read: no call is recorded until it is restored.
restricted = This recording is restricted (GDPR art. 18): only the privacy officer can play, download or export it, with a stated reason.
restricted_reason = A restricted recording is accessed only with a stated reason.
restriction_set = Restricted: kept, exempt from retention, and playable only by the privacy officer with a reason.
restriction_lifted = Restriction lifted. The access log records it.
rectified = Correction saved. The access log records which fields changed.
reason_missing = Give a reason.
rectify_invalid = A number must be a phone number; the name is at most 64 characters, the notes 1000.
number_invalid = This is not a phone number.
subject_unknown = The number is not kept once the person's requests are closed: type it again.
requests_unreadable = The request register cannot be read. Contact the administrator.

# form errors
too_many_attempts = Too many attempts. Wait {minutes} minute(s) and try again.
setup_code_wrong = The setup code is wrong. Read it again from the appliance.
password_mismatch = The two passwords are not the same.
password_length = The password must be 10 to 128 characters long.
password_is_username = The password must not be the username.
username_invalid = The username must be 2 to 32 characters: a lowercase letter first, then lowercase letters, digits, dots, dashes or underscores.
user_exists = An account with this name already exists.
role_invalid = Unknown role.
role_missing = Choose at least one role.
role_not_grantable = You cannot give or remove rights that you do not have yourself.
cannot_delete_self = You cannot delete your own account.
login_failed = Wrong username or password.
current_password_wrong = The current password is wrong.
label_invalid = The label must be 1 to 64 characters.
too_many_tokens = You have too many API tokens. Revoke one first.
confirm_missing = Confirm the erasure.
bad_form = The form could not be read. Reload the page and try again.
bad_request = The request could not be read.
bad_page = The page number is not valid.
bad_param = A parameter is not valid.
bad_range = The requested part of the audio does not exist.
no_page = There is no such page.
no_recording = There is no such recording. It may have been erased.
no_audio = The audio of this recording is not available.
no_token = There is no such API token.
no_user = There is no such account.
not_found = This page does not exist.
forbidden = Your account does not have the right to do this.
csrf = The form has expired or was sent from another site. Reload the page and try again.
cross_origin = Requests from other sites are refused.
too_large = The request is too large.
login_required = Please log in.
erase_failed = The recording could not be erased completely. Contact the administrator.
setup_done = The appliance is already set up.
users_corrupt = The account file cannot be read. Contact the administrator.

# HTTP errors without a more precise message
http_400 = The request could not be read.
http_401 = Please log in.
http_403 = Your account does not have the right to do this.
http_404 = This page does not exist.
http_405 = This action is not possible here.
http_413 = The request is too large.
http_416 = The requested part of the file does not exist.
http_429 = Too many requests. Wait a moment and try again.
http_500 = Something went wrong on the appliance. The error has been logged.

# roles
role_admin = Administrator
role_technician = Technician
role_supervisor = Supervisor
role_privacy_officer = Privacy officer

# line states
state_idle = Idle
state_ringing = Ringing
state_dialling = Dialling
state_announcing = Playing the announcement
state_recording = Recording
state_not_recorded = Call in progress, not recorded
state_unknown = Unknown

# call directions
direction_in = Incoming
direction_out = Outgoing

# faults found by the web layer itself
daemon_unreachable = The recorder does not answer. Calls may not be recorded.

# recording status and how calls ended
status_complete = Complete
status_recording = Being recorded
status_interrupted = Interrupted (recovered after a power cut or crash)
end_hangup = Hung up on this side
end_clear_down = Ended by the other side
end_line_down = Line lost
outcome_recorded = Recorded
outcome_unanswered = Not answered
outcome_abandoned = Abandoned before the answer
outcome_not_recorded = Not recorded
outcome_ended_during_announcement = Ended during the announcement (not recorded)

# status page words (also handed to status.js, which fills in {n} and {d})
st_on = On
st_off = Off
st_none = None
st_answered = answered
st_not_answered = not answered yet
st_rings = {n} ring(s)
st_for = for {d}
st_next_private = pressed: the next call starting before {at} will not be recorded
st_not_pressed = not pressed
st_connected = Connected
st_lost = Lost
st_open = Open
st_not_open = Not open
st_running = Running
st_stopped = Stopped
st_clock_sync = Synchronised ({source})
st_clock_unsync = NOT synchronised ({source})
st_clock_warning = Clock not synchronised: recordings made now are marked "time unverified", and retention by age waits until it is.

# recordings made while the clock was not synchronised (list and recording page)
time_unverified = ⚠ time unverified
time_unverified_title = Recorded while the appliance's clock was not synchronised with a time server since it was switched on: the date and times may be wrong.

% rebase('layout.tpl', title='Recording', section='recordings')
% ann = meta.get('announcement') if isinstance(meta.get('announcement'), dict) else {}
% audio = meta.get('audio') if isinstance(meta.get('audio'), dict) else {}
% status = meta.get('status') if isinstance(meta.get('status'), str) else ''
% end_reason = meta.get('end_reason') if isinstance(meta.get('end_reason'), str) else ''
<p><a href="/recordings">← All recordings</a></p>
<h1>Recording of <time datetime="{{meta.get('started_at', '')}}">{{local_time(meta.get('started_at'), True) or rec_id}}</time></h1>
% if meta.get('clock_synchronised') is False:
<p class="warning time-unverified" role="note">{{t('time_unverified')}}: {{t('time_unverified_title')}}</p>
% end
% restricted = bool(meta.get('restricted'))
% from urllib.parse import quote
% q = '?reason=' + quote(access_reason) if restricted and access_reason else ''
% if restricted:
<section aria-labelledby="restr-h" class="warning">
  <h2 id="restr-h">Restricted</h2>
% info = meta.get('restriction') if isinstance(meta.get('restriction'), dict) else {}
  <p>Kept but not used (GDPR art. 18) since {{local_time(info.get('at'), True) or '—'}}, by {{info.get('by') or '—'}}: {{info.get('reason') or '—'}}. It is never erased by retention while restricted.</p>
% if has_audio and not access_reason:
  <form method="get" action="/recordings/{{rec_id}}" class="actions">
    <label for="access-reason">Why you need to play or download it (logged)</label>
    <input id="access-reason" name="reason" maxlength="1000" required>
    <button type="submit">Access</button>
  </form>
% end
  <form method="post" action="/recordings/{{rec_id}}/unrestrict" class="actions">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <label for="lift-reason">Why lift the restriction</label>
    <input id="lift-reason" name="reason" maxlength="1000" required>
    <button type="submit">Lift the restriction</button>
  </form>
</section>
% end
% if has_audio and (not restricted or access_reason):
<section aria-labelledby="listen-h">
  <h2 id="listen-h">Listen</h2>
  <audio controls preload="metadata" src="/recordings/{{rec_id}}/audio{{q}}">
    Your browser cannot play this audio. <a href="/recordings/{{rec_id}}/download{{q}}">Download it</a> instead.
  </audio>
  <p class="actions">
% kind = {'opus': 'Opus', 'flac': 'FLAC'}.get(audio.get('format'), 'WAV')
    <a class="button" href="/recordings/{{rec_id}}/download{{q}}" download>Download ({{kind}})</a>
% if can('recordings.erase'):
    <a class="button danger" href="/recordings/{{rec_id}}/erase">Erase…</a>
% end
  </p>
</section>
% elif not has_audio:
<p class="warning">The audio file of this recording is missing.</p>
% if can('recordings.erase'):
<p><a class="button danger" href="/recordings/{{rec_id}}/erase">Erase…</a></p>
% end
% end
% if can('subjects.manage') and not restricted:
<form method="post" action="/recordings/{{rec_id}}/restrict" class="actions">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <label for="restrict-reason">Restrict (GDPR art. 18): reason</label>
  <input id="restrict-reason" name="reason" maxlength="1000" required>
  <button type="submit">Restrict</button>
</form>
% end
<section aria-labelledby="meta-h">
  <h2 id="meta-h">Details</h2>
  <dl class="meta">
    <dt>Identifier</dt><dd><code>{{rec_id}}</code></dd>
    <dt>Started</dt><dd>{{local_time(meta.get('started_at'), True) or '—'}}</dd>
    <dt>Ended</dt><dd>{{local_time(meta.get('ended_at'), True) or '—'}}</dd>
    <dt>Duration</dt><dd>{{duration(meta.get('duration_s')) or '—'}}</dd>
% if isinstance(meta.get('clock_synchronised'), bool):
    <dt>Clock at the start</dt><dd>{{'Synchronised' if meta['clock_synchronised'] else 'Not synchronised: ' + t('time_unverified')}}</dd>
% end
    <dt>Direction</dt><dd>{{t('direction_' + meta['direction']) if meta.get('direction') in ('in', 'out') else '—'}}</dd>
    <dt>Line</dt><dd>{{meta.get('line') or '—'}}</dd>
    <dt>Caller number</dt><dd>{{meta.get('caller_number') or '—'}}</dd>
    <dt>Caller name</dt><dd>{{meta.get('caller_name') or '—'}}</dd>
    <dt>Dialled number</dt><dd>{{meta.get('called_number') or '—'}}</dd>
% if isinstance(meta.get('ring_count'), int) and meta.get('direction') == 'in':
    <dt>Rings before the answer</dt><dd>{{meta['ring_count']}}</dd>
% end
    <dt>Status</dt><dd>{{t('status_' + status, status) if status else '—'}}</dd>
    <dt>End of the call</dt><dd>{{t('end_' + end_reason, end_reason) if end_reason else '—'}}</dd>
  </dl>
  <h3>Announcement</h3>
  <dl class="meta">
    <dt>Prompt</dt><dd>{{ann.get('prompt') or '—'}}</dd>
    <dt>Prompt SHA-256</dt><dd><code class="hash">{{ann.get('sha256') or '—'}}</code></dd>
    <dt>Played at</dt><dd>{{local_time(ann.get('started_at'), True) or '—'}}</dd>
    <dt>Played in full</dt><dd>{{'Yes' if ann.get('completed') is True else ('No' if ann.get('completed') is False else '—')}}</dd>
  </dl>
  <h3>Audio</h3>
  <dl class="meta">
    <dt>Format</dt><dd>{{str(audio.get('format') or '—').upper()}}</dd>
    <dt>Sample rate</dt><dd>{{str(audio['sample_rate']) + ' Hz' if isinstance(audio.get('sample_rate'), int) else '—'}}</dd>
% if audio.get('channels') == 2:
%   # A SIP call: channel 0 (left) is the office side, 1 (right) the remote party. The
%   # sidecar may name them ("channel_names"); known names get their label, others as is.
%   labels = {'office': 'office', 'lan': 'office', 'remote': 'remote party', 'trunk': 'remote party'}
%   names = meta.get('channel_names') or audio.get('channel_names')
%   names = names if isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) and n for n in names) else ['office', 'remote']
    <dt>Channels</dt><dd>2 channels: {{labels.get(names[0], names[0])}} (left), {{labels.get(names[1], names[1])}} (right)</dd>
% end
    <dt>Size</dt><dd>{{size(audio.get('bytes')) or '—'}}</dd>
  </dl>
</section>

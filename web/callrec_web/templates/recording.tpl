% rebase('layout.tpl', title=_('Recording'), section='recordings')
% ann = meta.get('announcement') if isinstance(meta.get('announcement'), dict) else {}
% audio = meta.get('audio') if isinstance(meta.get('audio'), dict) else {}
% status = meta.get('status') if isinstance(meta.get('status'), str) else ''
% end_reason = meta.get('end_reason') if isinstance(meta.get('end_reason'), str) else ''
<p><a href="/recordings">{{_('← All recordings')}}</a></p>
<h1>{{_('Recording of')}} <time datetime="{{meta.get('started_at', '')}}">{{local_time(meta.get('started_at'), True) or rec_id}}</time></h1>
% if meta.get('clock_synchronised') is False:
<p class="warning time-unverified" role="note">{{t('time_unverified')}}: {{t('time_unverified_title')}}</p>
% end
% restricted = bool(meta.get('restricted'))
% from urllib.parse import quote
% q = '?reason=' + quote(access_reason) if restricted and access_reason else ''
% if restricted:
<section aria-labelledby="restr-h" class="warning">
  <h2 id="restr-h">{{_('Restricted')}}</h2>
% info = meta.get('restriction') if isinstance(meta.get('restriction'), dict) else {}
  <p>{{_('Kept but not used (GDPR art. 18) since {at}, by {by}: {reason}. It is never erased by retention while restricted.', at=local_time(info.get('at'), True) or '—', by=info.get('by') or '—', reason=info.get('reason') or '—')}}</p>
% if has_audio and not access_reason:
  <form method="get" action="/recordings/{{rec_id}}" class="actions">
    <label for="access-reason">{{_('Why you need to play or download it (logged)')}}</label>
    <input id="access-reason" name="reason" maxlength="1000" required>
    <button type="submit">{{_('Access')}}</button>
  </form>
% end
  <form method="post" action="/recordings/{{rec_id}}/unrestrict" class="actions">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <label for="lift-reason">{{_('Why lift the restriction')}}</label>
    <input id="lift-reason" name="reason" maxlength="1000" required>
    <button type="submit">{{_('Lift the restriction')}}</button>
  </form>
</section>
% end
% if has_audio and (not restricted or access_reason):
<section aria-labelledby="listen-h">
  <h2 id="listen-h">{{_('Listen')}}</h2>
  <audio controls preload="metadata" src="/recordings/{{rec_id}}/audio{{q}}">
    {{_('Your browser cannot play this audio.')}} <a href="/recordings/{{rec_id}}/download{{q}}">{{_('Download it')}}</a> {{_('instead.')}}
  </audio>
  <p class="actions">
% kind = {'opus': 'Opus', 'flac': 'FLAC'}.get(audio.get('format'), 'WAV')
    <a class="button" href="/recordings/{{rec_id}}/download{{q}}" download>{{_('Download ({format})', format=kind)}}</a>
% if can('recordings.erase'):
    <a class="button danger" href="/recordings/{{rec_id}}/erase">{{_('Erase…')}}</a>
% end
  </p>
</section>
% elif not has_audio:
<p class="warning">{{_('The audio file of this recording is missing.')}}</p>
% if can('recordings.erase'):
<p><a class="button danger" href="/recordings/{{rec_id}}/erase">{{_('Erase…')}}</a></p>
% end
% end
% if can('subjects.manage') and not restricted:
<form method="post" action="/recordings/{{rec_id}}/restrict" class="actions">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <label for="restrict-reason">{{_('Restrict (GDPR art. 18): reason')}}</label>
  <input id="restrict-reason" name="reason" maxlength="1000" required>
  <button type="submit">{{_('Restrict')}}</button>
</form>
% end
<section aria-labelledby="meta-h">
  <h2 id="meta-h">{{_('Details')}}</h2>
  <dl class="meta">
    <dt>{{_('Identifier')}}</dt><dd><code>{{rec_id}}</code></dd>
    <dt>{{_('Started')}}</dt><dd>{{local_time(meta.get('started_at'), True) or '—'}}</dd>
    <dt>{{_('Ended')}}</dt><dd>{{local_time(meta.get('ended_at'), True) or '—'}}</dd>
    <dt>{{_('Duration')}}</dt><dd>{{duration(meta.get('duration_s')) or '—'}}</dd>
% if isinstance(meta.get('clock_synchronised'), bool):
    <dt>{{_('Clock at the start')}}</dt><dd>{{_('Synchronised') if meta['clock_synchronised'] else _('Not synchronised: {what}', what=t('time_unverified'))}}</dd>
% end
    <dt>{{_('Direction')}}</dt><dd>{{t('direction_' + meta['direction']) if meta.get('direction') in ('in', 'out') else '—'}}</dd>
    <dt>{{_('Line')}}</dt><dd>{{meta.get('line') or '—'}}</dd>
    <dt>{{_('Caller number')}}</dt><dd>{{meta.get('caller_number') or '—'}}</dd>
    <dt>{{_('Caller name')}}</dt><dd>{{meta.get('caller_name') or '—'}}</dd>
    <dt>{{_('Dialled number')}}</dt><dd>{{meta.get('called_number') or '—'}}</dd>
% if isinstance(meta.get('ring_count'), int) and meta.get('direction') == 'in':
    <dt>{{_('Rings before the answer')}}</dt><dd>{{meta['ring_count']}}</dd>
% end
    <dt>{{_('Status')}}</dt><dd>{{t('status_' + status, status) if status else '—'}}</dd>
    <dt>{{_('End of the call')}}</dt><dd>{{t('end_' + end_reason, end_reason) if end_reason else '—'}}</dd>
  </dl>
  <h3>{{_('Announcement')}}</h3>
  <dl class="meta">
    <dt>{{_('Prompt')}}</dt><dd>{{ann.get('prompt') or '—'}}</dd>
    <dt>{{_('Prompt SHA-256')}}</dt><dd><code class="hash">{{ann.get('sha256') or '—'}}</code></dd>
    <dt>{{_('Played at')}}</dt><dd>{{local_time(ann.get('started_at'), True) or '—'}}</dd>
    <dt>{{_('Played in full')}}</dt><dd>{{_('Yes') if ann.get('completed') is True else (_('No') if ann.get('completed') is False else '—')}}</dd>
  </dl>
  <h3>{{_('Audio')}}</h3>
  <dl class="meta">
    <dt>{{_('Format')}}</dt><dd>{{str(audio.get('format') or '—').upper()}}</dd>
    <dt>{{_('Sample rate')}}</dt><dd>{{str(audio['sample_rate']) + ' Hz' if isinstance(audio.get('sample_rate'), int) else '—'}}</dd>
% if audio.get('channels') == 2:
%   # A SIP call: channel 0 (left) is the office side, 1 (right) the remote party. The
%   # sidecar may name them ("channel_names"); known names get their label, others as is.
%   labels = {'office': _('office'), 'lan': _('office'), 'remote': _('remote party'), 'trunk': _('remote party')}
%   names = meta.get('channel_names') or audio.get('channel_names')
%   names = names if isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) and n for n in names) else ['office', 'remote']
    <dt>{{_('Channels')}}</dt><dd>{{_('2 channels: {left} (left), {right} (right)', left=labels.get(names[0], names[0]), right=labels.get(names[1], names[1]))}}</dd>
% end
    <dt>{{_('Size')}}</dt><dd>{{size(audio.get('bytes')) or '—'}}</dd>
  </dl>
</section>

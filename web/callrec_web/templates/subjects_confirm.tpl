% titles = {'export': _('Export a copy'), 'erase': _('Erase everything'), 'object': _('Objection')}
% rebase('layout.tpl', title=titles[action] + ' · ' + subject, section='subjects')
<p><a href="/subjects/{{subject}}">{{_('← Person {subject}', subject=subject)}}</a></p>
<h1>{{_('{action} for {phone}', action=titles[action], phone=phone)}}</h1>
% restricted = [r for r in recordings if r.get('restricted')]
% if action == 'export':
<p>{{_("One ZIP file: the audio of each of the {n} recording(s) as stored (Ogg/Opus, FLAC or WAV), its details as JSON, and an information sheet (French and English) with the controller, purposes, legal basis, retention, recipients, who accessed these recordings and when, the person's rights and how to complain.", n=len(recordings))}}</p>
<p>{{_('Total audio: {size}. The download shows its progress; large exports take a while.', size=size(sum(int((r.get('audio') or {}).get('bytes') or 0) for r in recordings)) or '0 B')}}</p>
% elif action == 'erase':
<p class="warning">{{_('All {n} recording(s) of this number, on the SD card and the USB stick, interrupted ones included, are erased for good (their keys destroyed, then their files). This cannot be undone. A receipt lists what was erased; afterwards only the pseudonym remains in the logs.', n=len(recordings))}}</p>
% if restricted:
<p class="warning">{{_('{n} of them are restricted: check that the reason for the restriction (a legal claim, a contested accuracy) no longer requires keeping them.', n=len(restricted))}}</p>
% end
% else:
<p>{{_('The number goes on the do-not-record list: calls from it (caller ID) and to it (dialled digits) are no longer recorded. Existing recordings are kept unless they are erased too.')}}</p>
% end
<form method="post" action="/subjects/{{subject}}/{{action}}" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
% if action == 'erase':
  <input type="hidden" name="confirm" value="yes">
% end
  <label for="reason">{{_('Reason (required: {n} restricted recording(s) are included)', n=len(restricted)) if action == 'export' and restricted else _('Reason or request reference (optional)')}}</label>
  <input id="reason" name="reason" maxlength="1000"{{!' required' if action == 'export' and restricted else ''}}>
  <div class="actions">
    <button type="submit"{{!' class="danger"' if action == 'erase' else ''}}>{{_('Download the ZIP') if action == 'export' else (_('Erase for good') if action == 'erase' else _('Add to the do-not-record list'))}}</button>
    <a class="button" href="/subjects/{{subject}}">{{_('Cancel')}}</a>
  </div>
</form>

% rebase('layout.tpl', title=_('Restrict') + ' · ' + subject, section='subjects')
<p><a href="/subjects/{{subject}}">{{_('← Person {subject}', subject=subject)}}</a></p>
<h1>{{_('Restrict the recordings of {phone}', phone=phone)}}</h1>
<p>{{_('Restricted recordings are kept (and never erased by retention) but nobody can play, download or export them, except the privacy officer with a stated reason, which the access log records.')}}</p>
% include('errors.tpl')
% free = [r for r in recordings if not r.get('restricted')]
% if not free:
<p>{{_('Every recording of this number is already restricted.')}}</p>
% else:
<form method="post" action="/subjects/{{subject}}/restrict" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <fieldset>
    <legend>{{_('Recordings (all if none is ticked)')}}</legend>
% for rec in free:
    <label><input type="checkbox" name="recording" value="{{rec['id']}}"> {{local_time(rec.get('started_at')) or rec['id']}}, {{duration(rec.get('duration_s'))}}</label>
% end
  </fieldset>
  <label for="reason">{{_('Reason (required)')}}</label>
  <input id="reason" name="reason" maxlength="1000" required>
  <div class="actions">
    <button type="submit">{{_('Restrict')}}</button>
    <a class="button" href="/subjects/{{subject}}">{{_('Cancel')}}</a>
  </div>
</form>
% end

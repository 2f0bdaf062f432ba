% rebase('layout.tpl', title='Restrict · ' + subject, section='subjects')
<p><a href="/subjects/{{subject}}">← Person {{subject}}</a></p>
<h1>Restrict the recordings of {{phone}}</h1>
<p>Restricted recordings are kept (and never erased by retention) but nobody can play, download or export them, except the privacy officer with a stated reason, which the access log records.</p>
% include('errors.tpl')
% free = [r for r in recordings if not r.get('restricted')]
% if not free:
<p>Every recording of this number is already restricted.</p>
% else:
<form method="post" action="/subjects/{{subject}}/restrict" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <fieldset>
    <legend>Recordings (all if none is ticked)</legend>
% for rec in free:
    <label><input type="checkbox" name="recording" value="{{rec['id']}}"> {{local_time(rec.get('started_at')) or rec['id']}}, {{duration(rec.get('duration_s'))}}</label>
% end
  </fieldset>
  <label for="reason">Reason (required)</label>
  <input id="reason" name="reason" maxlength="1000" required>
  <div class="actions">
    <button type="submit">Restrict</button>
    <a class="button" href="/subjects/{{subject}}">Cancel</a>
  </div>
</form>
% end

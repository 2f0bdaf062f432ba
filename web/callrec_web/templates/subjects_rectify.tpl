% rebase('layout.tpl', title=_('Rectify') + ' · ' + subject, section='subjects')
<p><a href="/subjects/{{subject}}">{{_('← Person {subject}', subject=subject)}}</a></p>
<h1>{{_('Rectify recording {id}', id=rec_id)}}</h1>
% include('errors.tpl')
<form method="post" action="/subjects/{{subject}}/rectify/{{rec_id}}" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <label for="caller_number">{{_('Caller number')}}</label>
  <input id="caller_number" name="caller_number" type="tel" maxlength="32" value="{{meta.get('caller_number') or ''}}">
  <label for="caller_name">{{_('Caller name')}}</label>
  <input id="caller_name" name="caller_name" maxlength="64" value="{{meta.get('caller_name') or ''}}">
  <label for="called_number">{{_('Dialled number')}}</label>
  <input id="called_number" name="called_number" type="tel" maxlength="32" value="{{meta.get('called_number') or ''}}">
  <label for="notes">{{_('Notes')}}</label>
  <textarea id="notes" name="notes" maxlength="1000" rows="3">{{meta.get('notes') or ''}}</textarea>
  <label for="reason">{{_('Reason or request reference')}}</label>
  <input id="reason" name="reason" maxlength="1000">
  <div class="actions">
    <button type="submit">{{_('Save the correction')}}</button>
    <a class="button" href="/subjects/{{subject}}">{{_('Cancel')}}</a>
  </div>
</form>

% rebase('layout.tpl', title=_('Do-not-record list'), section='subjects')
<p><a href="/subjects">{{_('← People')}}</a></p>
<h1>{{_('Do-not-record list')}}</h1>
<p>{{_("Calls from these numbers (by caller ID, before the answer) and to them (by the dialled digits) are neither announced nor recorded. A person's objection, made from their page, adds their number here; a prefix covers every number that starts with it. Changes apply from the next call and are in the access log.")}}</p>
% include('errors.tpl')
<section aria-labelledby="add-h">
  <h2 id="add-h">{{_('Add')}}</h2>
  <form method="post" action="/subjects/donotrecord" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <fieldset>
      <legend>{{_('What')}}</legend>
      <label><input type="radio" name="kind" value="number" checked> {{_('A number')}}</label>
      <label><input type="radio" name="kind" value="prefix"> {{_('A prefix (every number starting with it)')}}</label>
    </fieldset>
    <label for="dnr-value">{{_('Number or prefix')}}</label>
    <input id="dnr-value" name="value" type="tel" inputmode="tel" required maxlength="40" autocomplete="off" spellcheck="false">
    <label for="dnr-reason">{{_('Reason (for the access log; no name)')}}</label>
    <input id="dnr-reason" name="reason" maxlength="1000" autocomplete="off">
    <button type="submit">{{_('Add to the list')}}</button>
  </form>
</section>
<section aria-labelledby="list-h">
  <h2 id="list-h">{{_('On the list ({n})', n=len(entries))}}</h2>
% if not entries:
  <p>{{_('The list is empty: every call is announced and recorded.')}}</p>
% else:
  <div class="table-wrap" role="region" aria-label="{{_('Do-not-record list')}}" tabindex="0">
  <table class="dnr">
    <thead><tr><th scope="col">{{_('Number or prefix')}}</th><th scope="col">{{_('Kind')}}</th><th scope="col">{{_('Added')}}</th><th scope="col">{{_('Reason')}}</th><th scope="col"><span class="visually-hidden">{{_('Action')}}</span></th></tr></thead>
    <tbody>
% for e in entries:
      <tr>
        <td><code>{{e.value}}{{'…' if e.kind == 'prefix' else ''}}</code></td>
        <td>{{_('number') if e.kind == 'number' else (_('prefix') if e.kind == 'prefix' else e.kind)}}</td>
        <td>{{e.added_at or '—'}}</td>
        <td>{{e.reason or '—'}}</td>
        <td>
          <form method="post" action="/subjects/donotrecord/remove" class="inline">
            <input type="hidden" name="csrf_token" value="{{csrf}}">
            <input type="hidden" name="value" value="{{e.value}}">
            <input type="hidden" name="kind" value="{{e.kind}}">
            <label class="visually-hidden" for="why-{{e.kind}}-{{e.value}}">{{_('Reason for removing {value}', value=e.value)}}</label>
            <input id="why-{{e.kind}}-{{e.value}}" name="reason" placeholder="{{_('Reason (objection withdrawn…)')}}" maxlength="1000" required>
            <button type="submit" class="danger">{{_('Remove')}}</button>
          </form>
        </td>
      </tr>
% end
    </tbody>
  </table>
  </div>
% end
</section>

% rebase('layout.tpl', title='Do-not-record list', section='subjects')
<p><a href="/subjects">← People</a></p>
<h1>Do-not-record list</h1>
<p>Calls from these numbers (by caller ID, before the answer) and to them (by the dialled digits) are neither announced nor recorded. A person's objection, made from their page, adds their number here; a prefix covers every number that starts with it. Changes apply from the next call and are in the access log.</p>
% include('errors.tpl')
<section aria-labelledby="add-h">
  <h2 id="add-h">Add</h2>
  <form method="post" action="/subjects/donotrecord" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <fieldset>
      <legend>What</legend>
      <label><input type="radio" name="kind" value="number" checked> A number</label>
      <label><input type="radio" name="kind" value="prefix"> A prefix (every number starting with it)</label>
    </fieldset>
    <label for="dnr-value">Number or prefix</label>
    <input id="dnr-value" name="value" type="tel" inputmode="tel" required maxlength="40" autocomplete="off" spellcheck="false">
    <label for="dnr-reason">Reason (for the access log; no name)</label>
    <input id="dnr-reason" name="reason" maxlength="1000" autocomplete="off">
    <button type="submit">Add to the list</button>
  </form>
</section>
<section aria-labelledby="list-h">
  <h2 id="list-h">On the list ({{len(entries)}})</h2>
% if not entries:
  <p>The list is empty: every call is announced and recorded.</p>
% else:
  <div class="table-wrap" role="region" aria-label="Do-not-record list" tabindex="0">
  <table class="dnr">
    <thead><tr><th scope="col">Number or prefix</th><th scope="col">Kind</th><th scope="col">Added</th><th scope="col">Reason</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
    <tbody>
% for e in entries:
      <tr>
        <td><code>{{e.value}}{{'…' if e.kind == 'prefix' else ''}}</code></td>
        <td>{{e.kind}}</td>
        <td>{{e.added_at or '—'}}</td>
        <td>{{e.reason or '—'}}</td>
        <td>
          <form method="post" action="/subjects/donotrecord/remove" class="inline">
            <input type="hidden" name="csrf_token" value="{{csrf}}">
            <input type="hidden" name="value" value="{{e.value}}">
            <input type="hidden" name="kind" value="{{e.kind}}">
            <label class="visually-hidden" for="why-{{e.kind}}-{{e.value}}">Reason for removing {{e.value}}</label>
            <input id="why-{{e.kind}}-{{e.value}}" name="reason" placeholder="Reason (objection withdrawn…)" maxlength="1000" required>
            <button type="submit" class="danger">Remove</button>
          </form>
        </td>
      </tr>
% end
    </tbody>
  </table>
  </div>
% end
</section>

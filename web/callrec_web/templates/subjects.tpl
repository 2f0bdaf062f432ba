% rebase('layout.tpl', title='People', section='subjects')
<h1>People</h1>
<p>Requests about a person: access and copy, erasure, restriction, rectification, objection (GDPR art. 15 to 21). Each must be answered within one month.</p>
<p><a href="/subjects/donotrecord">The do-not-record list</a>: numbers and prefixes that are never recorded.</p>
% include('errors.tpl')
<form method="post" action="/subjects" class="stack" role="search" aria-label="Find a person by phone number">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <label for="number">Phone number</label>
  <input id="number" name="number" type="tel" inputmode="tel" required maxlength="32" autocomplete="off" spellcheck="false" aria-describedby="number-help">
  <p id="number-help" class="help">Any common form: 06 12 34 56 78, +33 6 12 34 56 78 and 0033 6… are the same number. The number is not shown in addresses or logs: it becomes a pseudonym (p-…).</p>
  <button type="submit">Show what the appliance holds</button>
</form>
<section aria-labelledby="req-h">
  <h2 id="req-h">Requests</h2>
% include('subjects_requests.tpl', items=requests, with_subject=True)
</section>

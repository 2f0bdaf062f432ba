% rebase('layout.tpl', title=_('People'), section='subjects')
<h1>{{_('People')}}</h1>
<p>{{_('Requests about a person: access and copy, erasure, restriction, rectification, objection (GDPR art. 15 to 21). Each must be answered within one month.')}}</p>
<p><a href="/subjects/donotrecord">{{_('The do-not-record list')}}</a>{{_(': numbers and prefixes that are never recorded.')}}</p>
% include('errors.tpl')
<form method="post" action="/subjects" class="stack" role="search" aria-label="{{_('Find a person by phone number')}}">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <label for="number">{{_('Phone number')}}</label>
  <input id="number" name="number" type="tel" inputmode="tel" required maxlength="32" autocomplete="off" spellcheck="false" aria-describedby="number-help">
  <p id="number-help" class="help">{{_('Any common form: 06 12 34 56 78, +33 6 12 34 56 78 and 0033 6… are the same number. The number is not shown in addresses or logs: it becomes a pseudonym (p-…).')}}</p>
  <button type="submit">{{_('Show what the appliance holds')}}</button>
</form>
<section aria-labelledby="req-h">
  <h2 id="req-h">{{_('Requests')}}</h2>
% include('subjects_requests.tpl', items=requests, with_subject=True)
</section>

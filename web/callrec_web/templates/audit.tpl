% rebase('layout.tpl', title='Access log', section='audit')
<h1>Access log</h1>
% if verification is None:
<p class="flash" role="status">The access log is not available on this instance.</p>
% elif verification.ok:
<p class="flash" role="status" id="audit-verification">Chain verified: {{verification.entries}} entries{{' (entries %s to %s)' % (verification.first_seq, verification.last_seq) if verification.entries else ''}}, no entry edited, deleted or reordered.{{' %d incomplete line(s) from power cuts, kept and recorded.' % len(verification.tears) if verification.tears else ''}}{{'' if verification.sealed else ' Seals not checked: the key is not available.'}}</p>
% else:
<div class="errors" role="alert" id="audit-verification">
  <p><strong>The access log has been tampered with or damaged{{' at entry %s' % verification.broken_at if verification.broken_at is not None else ''}}.</strong></p>
  <ul>
% for problem in verification.problems:
    <li>{{problem.message}}</li>
% end
  </ul>
  <p>Keep the appliance as it is and tell the controller: this is a security incident.</p>
</div>
% end
<p>Every login, playback, download, erasure and account change: who, when, what and why. Phone numbers appear only as pseudonyms (p-…); type a number as the target to find its entries.</p>
<form method="get" action="/audit" class="filters" role="search" aria-label="Filter the access log">
  <fieldset>
    <legend>Filter</legend>
    <label for="f-actor">Who (account)</label>
    <input id="f-actor" name="actor" value="{{filters['actor']}}" maxlength="64" autocomplete="off" spellcheck="false">
    <label for="f-action">Action</label>
    <input id="f-action" name="action" value="{{filters['action']}}" maxlength="64" autocomplete="off" spellcheck="false" aria-describedby="f-action-help">
    <p id="f-action-help" class="help">For example recording.play, or recording. for every action on recordings.</p>
    <label for="f-target">Target (recording id, account, pseudonym or number)</label>
    <input id="f-target" name="target" value="{{filters['target']}}" maxlength="128" autocomplete="off" spellcheck="false">
    <label for="f-since">From (UTC date)</label>
    <input id="f-since" name="since" type="date" value="{{filters['since']}}">
    <label for="f-until">To (UTC date, included)</label>
    <input id="f-until" name="until" type="date" value="{{filters['until']}}">
    <button type="submit">Filter</button>
% if query:
    <a href="/audit">Clear the filter</a>
% end
  </fieldset>
</form>
% if not rows:
<p>No entry matches.</p>
% else:
<div class="table-wrap" role="region" aria-labelledby="audit-caption" tabindex="0">
<table class="audit">
  <caption id="audit-caption">{{total}} entr{{'y' if total == 1 else 'ies'}}, newest first. Page {{page}} of {{pages}}. Times are the appliance's local time.</caption>
  <thead>
    <tr>
      <th scope="col">#</th>
      <th scope="col">Date and time</th>
      <th scope="col">Who</th>
      <th scope="col">Action</th>
      <th scope="col">Target</th>
      <th scope="col">Reason</th>
      <th scope="col">Details</th>
    </tr>
  </thead>
  <tbody>
% for entry in rows:
%   details = entry.get('details') if isinstance(entry.get('details'), dict) else {}
    <tr>
      <td>{{entry.get('seq')}}</td>
      <td><time datetime="{{entry.get('at', '')}}">{{local_time(entry.get('at'), True)}}</time></td>
      <td>{{entry.get('actor', '')}}</td>
      <td><code>{{entry.get('action', '')}}</code></td>
      <td>{{entry.get('target') or '—'}}</td>
      <td>{{entry.get('reason') or '—'}}</td>
      <td>{{', '.join('%s: %s' % (k, ', '.join(map(str, v)) if isinstance(v, list) else v) for k, v in sorted(details.items())) or '—'}}</td>
    </tr>
% end
  </tbody>
</table>
</div>
% end
% if pages > 1:
<nav class="pager" aria-label="Pages">
% sep = '&' if query else ''
% if page > 1:
  <a href="/audit?{{query}}{{sep}}page={{page - 1}}" rel="prev">Newer</a>
% end
  <span>Page {{page}} of {{pages}}</span>
% if page < pages:
  <a href="/audit?{{query}}{{sep}}page={{page + 1}}" rel="next">Older</a>
% end
</nav>
% end

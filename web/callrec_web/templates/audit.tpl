% rebase('layout.tpl', title=_('Access log'), section='audit')
<h1>{{_('Access log')}}</h1>
% if verification is None:
<p class="flash" role="status">{{_('The access log is not available on this instance.')}}</p>
% elif verification.ok:
% v = verification
% verdict = _('Chain verified: {n} entries (entries {first} to {last}), no entry edited, deleted or reordered.', n=v.entries, first=v.first_seq, last=v.last_seq) if v.entries else _('Chain verified: {n} entries, no entry edited, deleted or reordered.', n=v.entries)
% if v.tears:
%   verdict += ' ' + _('{n} incomplete line(s) from power cuts, kept and recorded.', n=len(v.tears))
% end
% if not v.sealed:
%   verdict += ' ' + _('Seals not checked: the key is not available.')
% end
<p class="flash" role="status" id="audit-verification">{{verdict}}</p>
% else:
<div class="errors" role="alert" id="audit-verification">
  <p><strong>{{_('The access log has been tampered with or damaged at entry {n}.', n=verification.broken_at) if verification.broken_at is not None else _('The access log has been tampered with or damaged.')}}</strong></p>
  <ul>
% for problem in verification.problems:
    <li>{{problem.message}}</li>
% end
  </ul>
  <p>{{_('Keep the appliance as it is and tell the controller: this is a security incident.')}}</p>
</div>
% end
<p>{{_('Every login, playback, download, erasure and account change: who, when, what and why. Phone numbers appear only as pseudonyms (p-…); type a number as the target to find its entries.')}}</p>
<form method="get" action="/audit" class="filters" role="search" aria-label="{{_('Filter the access log')}}">
  <fieldset>
    <legend>{{_('Filter')}}</legend>
    <label for="f-actor">{{_('Who (account)')}}</label>
    <input id="f-actor" name="actor" value="{{filters['actor']}}" maxlength="64" autocomplete="off" spellcheck="false">
    <label for="f-action">{{_('Action')}}</label>
    <input id="f-action" name="action" value="{{filters['action']}}" maxlength="64" autocomplete="off" spellcheck="false" aria-describedby="f-action-help">
    <p id="f-action-help" class="help">{{_('For example recording.play, or recording. for every action on recordings.')}}</p>
    <label for="f-target">{{_('Target (recording id, account, pseudonym or number)')}}</label>
    <input id="f-target" name="target" value="{{filters['target']}}" maxlength="128" autocomplete="off" spellcheck="false">
    <label for="f-since">{{_('From (UTC date)')}}</label>
    <input id="f-since" name="since" type="date" value="{{filters['since']}}">
    <label for="f-until">{{_('To (UTC date, included)')}}</label>
    <input id="f-until" name="until" type="date" value="{{filters['until']}}">
    <button type="submit">{{_('Filter')}}</button>
% if query:
    <a href="/audit">{{_('Clear the filter')}}</a>
% end
  </fieldset>
</form>
% if not rows:
<p>{{_('No entry matches.')}}</p>
% else:
<div class="table-wrap" role="region" aria-labelledby="audit-caption" tabindex="0">
<table class="audit">
  <caption id="audit-caption">{{_('1 entry, newest first.') if total == 1 else _('{n} entries, newest first.', n=total)}} {{_('Page {page} of {pages}.', page=page, pages=pages)}} {{_("Times are the appliance's local time.")}}</caption>
  <thead>
    <tr>
      <th scope="col">#</th>
      <th scope="col">{{_('Date and time')}}</th>
      <th scope="col">{{_('Who')}}</th>
      <th scope="col">{{_('Action')}}</th>
      <th scope="col">{{_('Target')}}</th>
      <th scope="col">{{_('Reason')}}</th>
      <th scope="col">{{_('Details')}}</th>
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
<nav class="pager" aria-label="{{_('Pages')}}">
% sep = '&' if query else ''
% if page > 1:
  <a href="/audit?{{query}}{{sep}}page={{page - 1}}" rel="prev">{{_('Newer')}}</a>
% end
  <span>{{_('Page {page} of {pages}', page=page, pages=pages)}}</span>
% if page < pages:
  <a href="/audit?{{query}}{{sep}}page={{page + 1}}" rel="next">{{_('Older')}}</a>
% end
</nav>
% end

% rebase('layout.tpl', title=_('Recordings'), section='recordings')
<h1>{{_('Recordings')}}</h1>
% if not rows:
<p>{{_('No recordings yet.')}}</p>
% else:
<div class="table-wrap" role="region" aria-labelledby="rec-caption" tabindex="0">
<table class="recordings">
  <caption id="rec-caption">{{_('{n} recording(s), newest first.', n=total)}} {{_('Page {page} of {pages}.', page=page, pages=pages)}}</caption>
  <thead>
    <tr>
      <th scope="col">{{_('Date and time')}}</th>
      <th scope="col">{{_('Direction')}}</th>
      <th scope="col">{{_('Duration')}}</th>
      <th scope="col">{{_('Number')}}</th>
      <th scope="col">{{_('Announcement')}}</th>
      <th scope="col">{{_('Status')}}</th>
    </tr>
  </thead>
  <tbody>
% for rec in rows:
%   completed = field(rec, 'announcement', 'completed')
%   status = rec.get('status') if isinstance(rec.get('status'), str) else ''
    <tr>
      <td><a href="/recordings/{{rec['id']}}"><time datetime="{{rec.get('started_at', '')}}">{{local_time(rec.get('started_at')) or rec['id']}}</time></a>
%   if rec.get('clock_synchronised') is False:
        <span class="time-unverified" role="note" title="{{t('time_unverified_title')}}" aria-label="{{t('time_unverified')}}: {{t('time_unverified_title')}}">{{t('time_unverified')}}</span>
%   end
      </td>
      <td>{{t('direction_' + rec['direction']) if rec.get('direction') in ('in', 'out') else ''}}</td>
      <td>{{duration(rec.get('duration_s'))}}</td>
      <td>{{number(rec) or '—'}}</td>
      <td>{{_('Played in full') if completed is True else (_('Interrupted') if completed is False else '—')}}</td>
      <td>{{t('status_' + status, status) if status else '—'}}{{' · ' + _('Restricted') if rec.get('restricted') else ''}}</td>
    </tr>
% end
  </tbody>
</table>
</div>
% end
% if pages > 1:
<nav class="pager" aria-label="{{_('Pages')}}">
% if page > 1:
  <a href="/recordings?page={{page - 1}}" rel="prev">{{_('Newer')}}</a>
% end
  <span>{{_('Page {page} of {pages}', page=page, pages=pages)}}</span>
% if page < pages:
  <a href="/recordings?page={{page + 1}}" rel="next">{{_('Older')}}</a>
% end
</nav>
% end

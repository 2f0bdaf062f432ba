% rebase('layout.tpl', title='Recordings', section='recordings')
<h1>Recordings</h1>
% if not rows:
<p>No recordings yet.</p>
% else:
<div class="table-wrap" role="region" aria-labelledby="rec-caption" tabindex="0">
<table class="recordings">
  <caption id="rec-caption">{{total}} recording(s), newest first. Page {{page}} of {{pages}}.</caption>
  <thead>
    <tr>
      <th scope="col">Date and time</th>
      <th scope="col">Direction</th>
      <th scope="col">Duration</th>
      <th scope="col">Number</th>
      <th scope="col">Announcement</th>
      <th scope="col">Status</th>
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
      <td>{{'Played in full' if completed is True else ('Interrupted' if completed is False else '—')}}</td>
      <td>{{t('status_' + status, status) if status else '—'}}{{' · Restricted' if rec.get('restricted') else ''}}</td>
    </tr>
% end
  </tbody>
</table>
</div>
% end
% if pages > 1:
<nav class="pager" aria-label="Pages">
% if page > 1:
  <a href="/recordings?page={{page - 1}}" rel="prev">Newer</a>
% end
  <span>Page {{page}} of {{pages}}</span>
% if page < pages:
  <a href="/recordings?page={{page + 1}}" rel="next">Older</a>
% end
</nav>
% end

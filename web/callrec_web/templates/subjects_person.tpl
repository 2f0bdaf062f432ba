% rebase('layout.tpl', title=_('Person {subject}', subject=subject), section='subjects')
<p><a href="/subjects">{{_('← People')}}</a></p>
<h1>{{_('Person {subject}', subject=subject)}}</h1>
<p>{{_('Number')}} <strong>{{phone}}</strong> {{_('(shown to you only; addresses and the access log use the pseudonym')}} <code>{{subject}}</code>).
% if listed:
 <strong>{{_('On the do-not-record list')}}</strong>{{_(': calls from or to this number are not recorded.')}}
% end
</p>
% include('errors.tpl')
<nav aria-label="{{_('Rights')}}" class="actions">
  <a class="button" href="/subjects/{{subject}}/export">{{_('Access: export a copy…')}}</a>
  <a class="button" href="/subjects/{{subject}}/restrict">{{_('Restrict…')}}</a>
  <a class="button" href="/subjects/{{subject}}/object">{{_('Objection…')}}</a>
  <a class="button danger" href="/subjects/{{subject}}/erase">{{_('Erase everything…')}}</a>
  <a class="button" href="/audit?target={{subject}}">{{_('Access log')}}</a>
</nav>
<section aria-labelledby="recs-h">
  <h2 id="recs-h">{{_('Recordings ({n})', n=len(recordings))}}</h2>
% if not recordings:
  <p>{{_('The appliance holds no recording of this number.')}}</p>
% else:
  <div class="table-wrap" role="region" aria-labelledby="recs-h" tabindex="0">
  <table>
    <thead><tr><th scope="col">{{_('Date and time')}}</th><th scope="col">{{_('Direction')}}</th><th scope="col">{{_('Duration')}}</th><th scope="col">{{_('Volume')}}</th><th scope="col">{{_('Status')}}</th><th scope="col">{{_('Actions')}}</th></tr></thead>
    <tbody>
% for rec in recordings:
%   status = rec.get('status') if isinstance(rec.get('status'), str) else ''
      <tr>
        <td><a href="/recordings/{{rec['id']}}"><time datetime="{{rec.get('started_at', '')}}">{{local_time(rec.get('started_at')) or rec['id']}}</time></a></td>
        <td>{{t('direction_' + rec['direction']) if rec.get('direction') in ('in', 'out') else ''}}</td>
        <td>{{duration(rec.get('duration_s'))}}</td>
        <td>{{_('USB stick') if rec.get('volume') == 'usb' else _('SD card')}}</td>
        <td>{{t('status_' + status, status) if status else '—'}}{{!' <strong>' + _('Restricted') + '</strong>' if rec.get('restricted') else ''}}</td>
        <td class="actions">
          <a href="/subjects/{{subject}}/rectify/{{rec['id']}}">{{_('Rectify…')}}</a>
% if rec.get('restricted'):
          <form method="post" action="/recordings/{{rec['id']}}/unrestrict">
            <input type="hidden" name="csrf_token" value="{{csrf}}">
            <input type="hidden" name="back" value="/subjects/{{subject}}">
            <label for="lift-{{rec['id']}}" class="visually-hidden">{{_('Why lift it')}}</label>
            <input id="lift-{{rec['id']}}" name="reason" maxlength="1000" placeholder="{{_('Why lift it')}}" required>
            <button type="submit">{{_('Lift restriction')}}</button>
          </form>
% end
        </td>
      </tr>
% end
    </tbody>
  </table>
  </div>
% end
</section>
<section aria-labelledby="req-h">
  <h2 id="req-h">{{_('Requests')}}</h2>
% include('subjects_requests.tpl', items=requests, with_subject=False, back='/subjects/' + subject)
  <form method="post" action="/subjects/{{subject}}/requests" class="actions">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <label for="type">{{_('Register a request')}}</label>
    <select id="type" name="type">
% type_names = {'access': _('access'), 'erasure': _('erasure'), 'restriction': _('restriction'), 'rectification': _('rectification'), 'objection': _('objection')}
% for kind in types:
      <option value="{{kind}}">{{type_names.get(kind, kind)}}</option>
% end
    </select>
    <label for="received">{{_('received on')}}</label>
    <input id="received" name="received" type="date" value="{{today}}" required>
    <button type="submit">{{_('Register')}}</button>
  </form>
  <p class="help">{{_('Each action above also records its request (closing the open one of its type). Due dates are one month after receipt.')}}</p>
</section>

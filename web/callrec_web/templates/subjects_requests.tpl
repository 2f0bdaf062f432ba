% type_names = {'access': _('access'), 'erasure': _('erasure'), 'restriction': _('restriction'), 'rectification': _('rectification'), 'objection': _('objection')}
% status_names = {'open': _('open'), 'done': _('done'), 'refused': _('refused')}
% if not items:
<p>{{_('No request recorded.')}}</p>
% else:
<div class="table-wrap" role="region" aria-label="{{_('Requests')}}" tabindex="0">
<table class="requests">
  <thead>
    <tr>
      <th scope="col">{{_('Request')}}</th>
      <th scope="col">{{_('Type')}}</th>
% if with_subject:
      <th scope="col">{{_('Person')}}</th>
% end
      <th scope="col">{{_('Received')}}</th>
      <th scope="col">{{_('Due')}}</th>
      <th scope="col">{{_('Status')}}</th>
      <th scope="col">{{_('Outcome')}}</th>
    </tr>
  </thead>
  <tbody>
% for req in items:
    <tr{{!' class="overdue"' if req['overdue'] else ''}}>
      <td><code>{{req['id']}}</code></td>
      <td>{{type_names.get(req['type'], req['type'])}}</td>
% if with_subject:
      <td><a href="/subjects/{{req['subject']}}">{{req['subject']}}</a></td>
% end
      <td>{{req['received']}}</td>
      <td>{{req['due']}}{{!' <strong class="late">' + _('OVERDUE') + '</strong>' if req['overdue'] else ''}}</td>
      <td>{{status_names.get(req['status'], req['status'])}}{{' ' + _('by {name}', name=req['handled_by']) if req['handled_by'] else ''}}</td>
      <td>{{req['outcome'] or '—'}}
% if req.get('receipt'):
        <a href="/subjects/requests/{{req['id']}}/receipt">{{_('Receipt')}}</a> (<a href="/subjects/requests/{{req['id']}}/receipt?format=json">JSON</a>)
% end
% if req['status'] == 'open':
        <form method="post" action="/subjects/requests/{{req['id']}}/close" class="actions">
          <input type="hidden" name="csrf_token" value="{{csrf}}">
          <input type="hidden" name="back" value="{{get('back', '/subjects')}}">
          <label for="out-{{req['id']}}">{{_('Outcome')}}</label>
          <input id="out-{{req['id']}}" name="outcome" maxlength="2000">
          <button type="submit" name="status" value="done">{{_('Close as done')}}</button>
          <button type="submit" name="status" value="refused">{{_('Refuse')}}</button>
        </form>
% end
      </td>
    </tr>
% end
  </tbody>
</table>
</div>
% end

% if not items:
<p>No request recorded.</p>
% else:
<div class="table-wrap" role="region" aria-label="Requests" tabindex="0">
<table class="requests">
  <thead>
    <tr>
      <th scope="col">Request</th>
      <th scope="col">Type</th>
% if with_subject:
      <th scope="col">Person</th>
% end
      <th scope="col">Received</th>
      <th scope="col">Due</th>
      <th scope="col">Status</th>
      <th scope="col">Outcome</th>
    </tr>
  </thead>
  <tbody>
% for req in items:
    <tr{{!' class="overdue"' if req['overdue'] else ''}}>
      <td><code>{{req['id']}}</code></td>
      <td>{{req['type']}}</td>
% if with_subject:
      <td><a href="/subjects/{{req['subject']}}">{{req['subject']}}</a></td>
% end
      <td>{{req['received']}}</td>
      <td>{{req['due']}}{{!' <strong class="late">OVERDUE</strong>' if req['overdue'] else ''}}</td>
      <td>{{req['status']}}{{' by ' + req['handled_by'] if req['handled_by'] else ''}}</td>
      <td>{{req['outcome'] or '—'}}
% if req.get('receipt'):
        <a href="/subjects/requests/{{req['id']}}/receipt">Receipt</a> (<a href="/subjects/requests/{{req['id']}}/receipt?format=json">JSON</a>)
% end
% if req['status'] == 'open':
        <form method="post" action="/subjects/requests/{{req['id']}}/close" class="actions">
          <input type="hidden" name="csrf_token" value="{{csrf}}">
          <input type="hidden" name="back" value="{{get('back', '/subjects')}}">
          <label for="out-{{req['id']}}">Outcome</label>
          <input id="out-{{req['id']}}" name="outcome" maxlength="2000">
          <button type="submit" name="status" value="done">Close as done</button>
          <button type="submit" name="status" value="refused">Refuse</button>
        </form>
% end
      </td>
    </tr>
% end
  </tbody>
</table>
</div>
% end

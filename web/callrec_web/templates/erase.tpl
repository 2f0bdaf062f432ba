% rebase('layout.tpl', title='Erase recording', section='recordings')
<h1>Erase this recording?</h1>
% include('errors.tpl')
<p>Recording of <time datetime="{{meta.get('started_at', '')}}">{{local_time(meta.get('started_at'), True) or rec_id}}</time>, {{duration(meta.get('duration_s')) or '—'}} long.</p>
<p class="warning">The audio and all its details are deleted from the appliance for good. This cannot be undone.</p>
<form method="post" action="/recordings/{{rec_id}}/erase" class="actions">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <input type="hidden" name="confirm" value="yes">
  <div class="stack field">
    <label for="reason">Reason (optional, kept in the access log)</label>
    <input id="reason" name="reason" maxlength="1000" autocomplete="off" value="{{get('reason', '')}}" aria-describedby="reason-help">
    <p id="reason-help" class="help">For example the erasure request it answers. Phone numbers typed here are written as pseudonyms.</p>
  </div>
  <button type="submit" class="danger">Erase for good</button>
  <a class="button" href="/recordings/{{rec_id}}">Cancel</a>
</form>

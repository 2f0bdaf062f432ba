% rebase('layout.tpl', title=_('Erase recording'), section='recordings')
<h1>{{_('Erase this recording?')}}</h1>
% include('errors.tpl')
<p>{{_('Recording of')}} <time datetime="{{meta.get('started_at', '')}}">{{local_time(meta.get('started_at'), True) or rec_id}}</time>, {{_('{duration} long.', duration=duration(meta.get('duration_s')) or '—')}}</p>
<p class="warning">{{_('The audio and all its details are deleted from the appliance for good. This cannot be undone.')}}</p>
<form method="post" action="/recordings/{{rec_id}}/erase" class="actions">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <input type="hidden" name="confirm" value="yes">
  <div class="stack field">
    <label for="reason">{{_('Reason (optional, kept in the access log)')}}</label>
    <input id="reason" name="reason" maxlength="1000" autocomplete="off" value="{{get('reason', '')}}" aria-describedby="reason-help">
    <p id="reason-help" class="help">{{_('For example the erasure request it answers. Phone numbers typed here are written as pseudonyms.')}}</p>
  </div>
  <button type="submit" class="danger">{{_('Erase for good')}}</button>
  <a class="button" href="/recordings/{{rec_id}}">{{_('Cancel')}}</a>
</form>

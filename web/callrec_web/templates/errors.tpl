% if errors:
<div class="errors" role="alert">
  <ul>
% for key in errors:
    <li>{{t(key, minutes=get('minutes', 15))}}</li>
% end
  </ul>
</div>
% end

% rebase('layout.tpl', title=_('Erasure receipt'), section='subjects')
<p><a href="/subjects">{{_('← People')}}</a></p>
<h1>{{_('Erasure receipt')}}</h1>
<p role="status" class="flash">{{_('{n} recording(s) erased for person', n=len(receipt['erased']))}} <code>{{receipt['subject']}}</code> ({{_('request')}} <code>{{receipt['request']}}</code>).</p>
<p class="actions"><a class="button" href="/subjects/requests/{{receipt['request']}}/receipt">{{_('Printable receipt')}}</a> <a class="button" href="/subjects/requests/{{receipt['request']}}/receipt?format=json">{{_('Receipt as JSON')}}</a></p>
<table>
  <caption>{{_('Erased')}}</caption>
  <thead><tr><th scope="col">{{_('Date and time')}}</th><th scope="col">{{_('Direction')}}</th><th scope="col">{{_('Volume')}}</th><th scope="col">{{_('Identifier')}}</th></tr></thead>
  <tbody>
% for rec in receipt['erased']:
    <tr><td>{{local_time(rec.get('started_at')) or '—'}}</td><td>{{t('direction_' + rec['direction']) if rec.get('direction') in ('in', 'out') else ''}}</td><td>{{_('USB stick') if rec.get('volume') == 'usb' else _('SD card')}}</td><td><code>{{rec['id']}}</code></td></tr>
% end
  </tbody>
</table>
% if receipt['not_erased']:
<h2>{{_('Not erased')}}</h2>
<ul>
% for rec in receipt['not_erased']:
  <li><code>{{rec['id']}}</code>: {{rec.get('why', '')}}</li>
% end
</ul>
% end
% if receipt['warnings']:
<h2>{{_('Notes')}}</h2>
<ul>
% for w in receipt['warnings']:
  <li>{{w}}</li>
% end
</ul>
% end
